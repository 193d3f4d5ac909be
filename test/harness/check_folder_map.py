#!/usr/bin/env python3
"""Check that doc/internals.md's folder map lists every C file of src/, and nothing else.

The map is the first ``` block under "## Layout": a line "src/dir/" opens a
folder, an indented "name.c/.h" (or "name.c", "name.h") lists files in it, and
"src/name.c" lists a file at the top.  Exit status 1 on a file missing from
the map or a map entry naming no file.
"""
import os
import re
import sys

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
text = open('doc/internals.md', encoding='utf-8').read()
m = re.search(r'^## Layout\n.*?^```\n(.*?)^```', text, re.S | re.M)
if not m:
	print('doc/internals.md: no folder map (a ``` block under "## Layout")', file=sys.stderr)
	sys.exit(1)
listed = set()
folder = None
for line in m.group(1).splitlines():
	top = re.match(r'(src/(?:[\w-]+/)*)(\S*)', line)
	if top:
		folder, name = top.group(1), top.group(2)
		if not name:
			continue
		entry = name
	else:
		item = re.match(r'\s+([\w.-]+\.[ch](?:/\.h)?)\s', line + ' ')
		if not item or folder is None:
			continue
		entry = item.group(1)
		name = entry
	if entry.endswith('.c/.h'):
		base = entry[:-len('.c/.h')]
		listed.update({folder + base + '.c', folder + base + '.h'})
	elif re.search(r'\.[ch]$', entry):
		listed.add(folder + entry)
actual = set()
for dirpath, _, files in os.walk('src'):
	for f in files:
		if f.endswith(('.c', '.h')):
			actual.add(os.path.join(dirpath, f))
bad = 0
for f in sorted(actual - listed):
	print(f'doc/internals.md: the folder map does not list {f}', file=sys.stderr)
	bad = 1
for f in sorted(listed - actual):
	print(f'doc/internals.md: the folder map lists {f}, which does not exist', file=sys.stderr)
	bad = 1
if not bad:
	print(f'folder map: ok ({len(actual)} C files, each listed in doc/internals.md)')
sys.exit(bad)
