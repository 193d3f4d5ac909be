#!/usr/bin/env python3
"""Run every example of the documentation, in order, as a reader would.

Each ```sql and ```python block of README.md and doc/*.md runs in page order;
each page runs on its own fresh database (PGHOST/PGPORT/PGUSER as for psql),
in its own empty working directory, so a page never depends on another one.
Consecutive SQL blocks run in one psql session (-f per block, ON_ERROR_STOP),
so psql variables, temporary tables and SET ROLE carry from block to block as
they would for a reader; a Python block runs with python3 in the page's
working directory (files it writes are there for the next SQL block, e.g.
through psql's backquotes), and the next SQL block starts a new session.

A block that is deliberately not runnable says so with an HTML comment as the
last non-blank line before its fence:  <!-- not run: the reason -->
A statement the page shows failing is followed by a comment line with the
error, `-- ERROR:  message`: the test checks that exactly this statement fails
with that message (every other error fails the test).

The page creates the extension itself when one of its blocks runs
CREATE EXTENSION recsys; otherwise it is created first, as the README's
installation section tells the reader to.

Usage: doc_examples.py [--show] [--citus] [FILE.md ...]
  default files: README.md and doc/*.md except doc/citus.md, which runs in
  `make test-citus` (--citus: the fresh database of a page gets Citus on the
  coordinator and on the workers of CITUS_WORKER_PORTS).
  --show prints every block's output (to check the text around it).
Exit status 1 when a block fails: the file, the block's first line, the
statement and the error are printed.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

TOP = os.environ.get("RECSYS_TOP") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
PYTHON = os.environ.get("PYTHON") or ("/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3")
FENCE = re.compile(r"^(\s*)```\s*([A-Za-z0-9_+-]*)")
NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(\S.*?)\s*-->\s*$")
RUN_LANGS = ("sql", "python")


class Block:
	def __init__(self, path, lang, line, code, skip):
		self.path, self.lang, self.line, self.code, self.skip = path, lang, line, code, skip


def blocks_of(path):
	"""The fenced code blocks of a Markdown file: language, first code line, code, not-run reason"""
	lines = open(os.path.join(TOP, path), encoding="utf-8").read().split("\n")
	out, i = [], 0
	while i < len(lines):
		m = FENCE.match(lines[i])
		if not m:
			i += 1
			continue
		indent, lang = len(m.group(1)), m.group(2).lower()
		prev = i - 1
		while prev >= 0 and not lines[prev].strip():
			prev -= 1
		skip = NOT_RUN.match(lines[prev]).group(1) if prev >= 0 and NOT_RUN.match(lines[prev]) else None
		j = i + 1
		while j < len(lines) and not FENCE.match(lines[j]):
			j += 1
		if j >= len(lines):
			sys.exit(f"{path}:{i + 1}: code block without a closing fence")
		code = [l[indent:] if l[:indent].strip() == "" else l for l in lines[i + 1:j]]
		out.append(Block(path, lang, i + 2, code, skip))
		i = j + 1
	return out


def padded(block):
	"""The block's code preceded by blank lines, so that line numbers are the page's"""
	return "\n" * (block.line - 1) + "\n".join(block.code) + "\n"


def expected_errors(block):
	"""{line of the statement's end: message} for each `-- ERROR:` comment of a SQL block"""
	out = {}
	for k, text in enumerate(block.code):
		m = re.match(r"\s*--\s*ERROR:\s*(.*)", text)
		if not m:
			continue
		end = k - 1
		while end >= 0 and (not block.code[end].strip() or block.code[end].lstrip().startswith("--")):
			end -= 1
		if end < 0:
			sys.exit(f"{block.path}:{block.line + k}: an expected error without a statement before it")
		out[block.line + end] = m.group(1).strip()
	return out


def psql(args, **kw):
	return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"] + args,
						  capture_output=True, text=True, **kw)


def fresh_database(db, citus):
	"""Drop and create db (with Citus on every node when asked)"""
	r = psql(["-d", "postgres", "-c", f"DROP DATABASE IF EXISTS {db}", "-c", f"CREATE DATABASE {db}"])
	if r.returncode != 0:
		sys.exit(r.stderr)
	if not citus:
		return
	workers = os.environ["CITUS_WORKER_PORTS"].split()
	for port in workers:
		r = psql(["-p", port, "-d", "postgres", "-c", f"DROP DATABASE IF EXISTS {db}",
				  "-c", f"CREATE DATABASE {db}"])
		if r.returncode != 0:
			sys.exit(r.stderr)
		r = psql(["-p", port, "-d", db, "-c", "CREATE EXTENSION citus"])
		if r.returncode != 0:
			sys.exit(r.stderr)
	cmds = ["CREATE EXTENSION citus",
			f"SELECT citus_set_coordinator_host('127.0.0.1', {os.environ['PGPORT']})"]
	cmds += [f"SELECT citus_add_node('127.0.0.1', {p})" for p in workers]
	r = psql(["-d", db] + [a for c in cmds for a in ("-c", c)])
	if r.returncode != 0:
		sys.exit(r.stderr)


def drop_database(db, citus):
	psql(["-d", "postgres", "-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"])
	if citus:
		for port in os.environ["CITUS_WORKER_PORTS"].split():
			psql(["-p", port, "-d", "postgres", "-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"])


def report(block, kind, detail):
	print(f"FAIL {block.path}: {kind} block at line {block.line}", file=sys.stderr)
	print("    " + detail.rstrip().replace("\n", "\n    "), file=sys.stderr)


def run_sql(segment, work, env, show):
	"""Run consecutive SQL blocks in one psql session; the failing block or None"""
	args = []
	for n, b in enumerate(segment):
		name = os.path.join(work, ".blocks", str(n), os.path.basename(b.path))
		os.makedirs(os.path.dirname(name), exist_ok=True)
		with open(name, "w") as f:
			f.write(padded(b))
		args += ["-f", name]
	expected = [expected_errors(b) for b in segment]
	# with expected errors psql goes on after an error, and every error is checked below
	stop = "0" if any(expected) else "1"
	r = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=" + stop, "-b"] + args,
					   cwd=work, env=env, capture_output=True, text=True)
	if show:
		sys.stdout.write(r.stdout + r.stderr)
	# psql:<file>:<line>: ERROR: ...  names the block file, whose lines are the page's
	errors = list(re.finditer(r"^psql:" + re.escape(work) + r"/\.blocks/(\d+)/[^:]*:(\d+): (ERROR|FATAL|error): *(.*)$",
							  r.stderr, re.M))
	m = None
	for e in errors:
		want = expected[int(e.group(1))].pop(int(e.group(2)), None)
		if want is None or e.group(4).strip() != want:
			m = e
			break
	if m is None and r.returncode == 0:
		missing = [(n, line, msg) for n, x in enumerate(expected) for line, msg in x.items()]
		if not missing:
			return None
		n, line, msg = missing[0]
		report(segment[n], "SQL", f"statement ending at line {line} should fail with: ERROR:  {msg}\n" +
			   "but it did not (or failed earlier)")
		return segment[n]
	failed = segment[int(m.group(1))] if m else segment[-1]
	detail = r.stderr if m is None else r.stderr[m.start():]
	if m:
		detail = f"statement ending at line {m.group(2)}:\n" + detail
	names = {str(n): b.path for n, b in enumerate(segment)}
	detail = re.sub(re.escape(work) + r"/\.blocks/(\d+)/[^:]*", lambda x: names[x.group(1)], detail)
	report(failed, "SQL", detail)
	return failed


def run_python(block, work, env, show):
	"""Run a Python block in the page's directory; True when it succeeds"""
	name = os.path.join(work, ".blocks", "py" + str(block.line) + ".py")
	os.makedirs(os.path.dirname(name), exist_ok=True)
	with open(name, "w") as f:
		f.write(padded(block))
	# compiled under the page's name, so a traceback gives the page's line numbers
	runner = ("import sys; src = open(sys.argv[1]).read(); "
			  f"exec(compile(src, {block.path!r}, 'exec'), {{'__name__': '__main__'}})")
	r = subprocess.run([PYTHON, "-c", runner, name], cwd=work, env=env, capture_output=True, text=True)
	if show:
		sys.stdout.write(r.stdout + r.stderr)
	if r.returncode == 0:
		return True
	report(block, "Python", r.stdout + r.stderr)
	return False


def run_page(path, show, citus):
	"""Run one page's blocks in order; (passed, failed, not run, not reached)"""
	blocks = [b for b in blocks_of(path) if b.lang in RUN_LANGS]
	runnable = [b for b in blocks if not b.skip]
	skipped = len(blocks) - len(runnable)
	if not runnable:
		return 0, 0, skipped, 0
	db = "doc_" + re.sub(r"[^a-z0-9]+", "_", path.lower().replace(".md", ""))
	fresh_database(db, citus)
	env = dict(os.environ, PGDATABASE=db)
	creates = any(b.lang == "sql" and re.search(r"create\s+extension\s+(if\s+not\s+exists\s+)?recsys",
												"\n".join(b.code), re.I) for b in runnable)
	if not creates:
		r = psql(["-d", db, "-c", "CREATE EXTENSION recsys"])
		if r.returncode != 0:
			sys.exit(r.stderr)
	work = tempfile.mkdtemp(prefix="recsys-doc.")
	if os.geteuid() == 0:
		os.chmod(work, 0o755)
	passed = 0
	try:
		i = 0
		while i < len(runnable):
			if runnable[i].lang == "python":
				if show:
					print(f"--- {path}:{runnable[i].line} (python)")
				if not run_python(runnable[i], work, env, show):
					return passed, 1, skipped, len(runnable) - passed - 1
				passed += 1
				i += 1
				continue
			j = i
			while j < len(runnable) and runnable[j].lang == "sql":
				j += 1
			segment = runnable[i:j]
			if show:
				print(f"--- {path}:{segment[0].line}..{segment[-1].line} (sql)")
			failed = run_sql(segment, work, env, show)
			if failed is not None:
				passed += segment.index(failed)
				return passed, 1, skipped, len(runnable) - passed - 1
			passed += len(segment)
			i = j
		return passed, 0, skipped, 0
	finally:
		shutil.rmtree(work, ignore_errors=True)
		drop_database(db, citus)


def main():
	args = sys.argv[1:]
	show = "--show" in args
	citus = "--citus" in args
	files = [a for a in args if not a.startswith("--")]
	if not files:
		files = ["README.md"] + sorted(f for f in glob.glob("doc/*.md", root_dir=TOP) if f != "doc/citus.md")
	totals = [0, 0, 0, 0]
	nblocks = 0
	for path in files:
		n = len([b for b in blocks_of(path) if b.lang in RUN_LANGS])
		nblocks += n
		result = run_page(path, show, citus)
		totals = [a + b for a, b in zip(totals, result)]
	passed, failed, skipped, unreached = totals
	line = f"doc examples: {nblocks} blocks in {len(files)} files, {passed} passed, {failed} failed"
	if skipped:
		line += f", {skipped} marked not run"
	if unreached:
		line += f", {unreached} not reached after a failure"
	print(line)
	sys.exit(1 if failed else 0)


if __name__ == "__main__":
	main()
