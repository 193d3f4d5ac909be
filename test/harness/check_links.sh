#!/usr/bin/env bash
# Check that every relative link and image in the Markdown documentation
# points to a file that exists.  No network: absolute URLs (scheme://) and
# mailto: links are skipped, and anchors (#...) are not checked.
# Usage: check_links.sh [file.md ...]   (default: README.md CHANGELOG.md doc/*.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(README.md CHANGELOG.md doc/*.md)
bad=0
for f in "${files[@]}"; do
	[ -f "$f" ] || continue
	dir=$(dirname "$f")
	# ](target) and ](target "title"), fenced code blocks and code spans excluded
	while IFS= read -r target; do
		target=${target%% *}
		case "$target" in
			''|*://*|mailto:*) continue ;;
		esac
		if [ ! -e "$dir/$target" ]; then
			echo "$f: broken link: $target" >&2
			bad=1
		fi
	done < <(awk '/^ *```/ { fence = !fence; next } !fence' "$f" | sed 's/`[^`]*`//g' | grep -o '](\([^)#]*\)' | sed 's/^](//')
done
if [ "$bad" -ne 0 ]; then
	exit 1
fi
echo "links: ok (${#files[@]} files)"
