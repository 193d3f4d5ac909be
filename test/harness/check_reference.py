#!/usr/bin/env python3
"""Check that README.md's Reference lists exactly the SQL objects recsys installs.

Every function, aggregate, view and table that src/sql/*.sql creates in schema
recsys must be named in README.md's "Reference" section (a code span that starts
with the name, or with recsys.name), either as documented API or in its
"Internal:" paragraph; and every name the Reference shows as a call (`name(`)
must exist.  Run by `make test` before the build, next to check_links.sh.
"""
import glob
import os
import re
import sys

top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
os.chdir(top)

created = set()
pattern = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|AGGREGATE|VIEW|TABLE|PROCEDURE)\s+recsys\.([a-z_0-9]+)",
    re.I | re.M)
for path in sorted(glob.glob("src/sql/*.sql")):
    with open(path) as f:
        created.update(m.group(1).lower() for m in pattern.finditer(f.read()))

with open("README.md") as f:
    readme = f.read()
start = readme.find("\n## Reference")
if start < 0:
    sys.exit("check_reference: README.md has no '## Reference' section")
end = readme.find("\n## ", start + 1)
reference = readme[start:end if end > 0 else len(readme)]

spans = re.findall(r"`([^`]+)`", reference)
named = set()
called = set()
for span in spans:
    for m in re.finditer(r"(?:recsys\.)?([a-z_][a-z_0-9]*)", span):
        named.add(m.group(1))
    m = re.match(r"(?:recsys\.)?([a-z_][a-z_0-9]*)\(", span)
    if m:
        called.add(m.group(1))
# "the aggregates' `*_accum`, `*_combine`, `*_final`" covers support functions
wildcards = [s[1:] for s in spans if s.startswith("*_")]

missing = sorted(n for n in created
                 if n not in named and not any(n.endswith(w) for w in wildcards))
unknown = sorted(n for n in called if n not in created)
# every plain name in the "Internal" paragraph must exist too
internal = reference[reference.find("Internal"):]
internal = internal[:internal.find("\n\n")] if "\n\n" in internal else internal
unknown += sorted(n for n in re.findall(r"`([a-z_][a-z_0-9]*)`", internal) if n not in created)

for n in missing:
    print(f"check_reference: recsys.{n} is installed but README.md's Reference does not name it")
for n in unknown:
    print(f"check_reference: README.md's Reference names {n}, which src/sql/ does not create")
if missing or unknown:
    sys.exit(1)
print(f"check_reference: {len(created)} SQL objects, all named in README.md's Reference")
