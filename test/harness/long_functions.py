#!/usr/bin/env python3
"""List the C functions in src/ whose body is longer than a limit.

A function's length is the number of lines from its opening brace to its
closing brace, both included.  Functions named in the allowlist
(test/harness/long_functions.txt, one "path:function  # reason" a line) are
tolerated; an allowlisted function that is gone or now short is reported too,
so that the list can only shrink.  Exit status 1 on any finding.

No compiler needed: comments, strings and character constants are blanked,
preprocessor lines skipped, and a top-level "{" that follows ")" (and no "=")
opens a function body.
"""
import os
import re
import sys

LIMIT = 150


def blank(text):
	"""Text with comments, strings and char constants replaced by spaces (newlines kept)."""
	out = []
	i, n = 0, len(text)
	while i < n:
		c = text[i]
		if text.startswith('/*', i):
			j = text.find('*/', i + 2)
			j = n if j < 0 else j + 2
			out.append(re.sub(r'[^\n]', ' ', text[i:j]))
			i = j
		elif text.startswith('//', i):
			j = text.find('\n', i)
			j = n if j < 0 else j
			out.append(' ' * (j - i))
			i = j
		elif c in '"\'':
			j = i + 1
			while j < n and text[j] != c:
				j += 2 if text[j] == '\\' else 1
			j = min(j + 1, n)
			out.append(c + re.sub(r'[^\n]', ' ', text[i + 1:j - 1]) + c)
			i = j
		else:
			out.append(c)
			i += 1
	# preprocessor lines (with continuations) hold no function bodies
	lines = ''.join(out).split('\n')
	cont = False
	for k, line in enumerate(lines):
		if cont or line.lstrip().startswith('#'):
			cont = line.endswith('\\')
			lines[k] = ''
	return '\n'.join(lines)


def functions(path):
	"""Yield (name, first line, length) of each function defined in a C file."""
	with open(path, encoding='utf-8', errors='replace') as f:
		text = blank(f.read())
	depth = 0
	start = 0		# offset where the current top-level declaration begins
	open_at = None
	name = None
	for i, c in enumerate(text):
		if c == '{':
			if depth == 0:
				head = text[start:i]
				name = None
				if head.rstrip().endswith(')') and '=' not in head:
					m = re.search(r'([A-Za-z_]\w*)\s*\(', head)
					# the declarator's name: the identifier before the first "(" at
					# parenthesis depth 0 (macros such as PG_FUNCTION_INFO_V1 end
					# with ";" and so begin an earlier declaration)
					if m:
						name = m.group(1)
				open_at = i
			depth += 1
		elif c == '}':
			depth -= 1
			if depth == 0:
				if name:
					first = text.count('\n', 0, open_at) + 1
					last = text.count('\n', 0, i) + 1
					yield name, first, last - first + 1
				name = None
				start = i + 1
		elif c == ';' and depth == 0:
			start = i + 1


def main():
	root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
	os.chdir(root)
	allow_file = 'test/harness/long_functions.txt'
	allowed = {}
	with open(allow_file) as f:
		for number, line in enumerate(f, 1):
			entry = line.split('#', 1)[0].strip()
			if entry:
				if '#' not in line:
					print(f'{allow_file}:{number}: {entry} has no reason comment', file=sys.stderr)
					return 1
				allowed[entry] = False
	bad = 0
	listing = '--list' in sys.argv[1:]
	for dirpath, _, files in sorted(os.walk('src')):
		for fn in sorted(files):
			if not fn.endswith('.c'):
				continue
			path = os.path.join(dirpath, fn)
			for name, first, length in functions(path):
				key = f'{path}:{name}'
				if listing and length > LIMIT:
					print(f'{key}\t{length}\tline {first}')
				if length <= LIMIT:
					continue
				if key in allowed:
					allowed[key] = True
				else:
					print(f'{path}:{first}: {name} is {length} lines long (more than {LIMIT}): '
						  f'split it by phase, or list it in {allow_file} with a reason', file=sys.stderr)
					bad = 1
	for key, seen in allowed.items():
		if not seen:
			print(f'{allow_file}: {key} is no longer over {LIMIT} lines (or is gone): '
				  'remove it from the list', file=sys.stderr)
			bad = 1
	return bad


if __name__ == '__main__':
	sys.exit(main())
