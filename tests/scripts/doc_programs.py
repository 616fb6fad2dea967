#!/usr/bin/env python3
"""Keeps README.md and docs/ honest.

1. Every link between them resolves: a relative path names a file of the
   repository (never one outside it), and an anchor names a heading of its
   page.
2. Every ```cpp block that is a complete program (it defines main) compiles
   as shown against the source tree's headers, and runs to exit code 0 on
   1, 2 and 3 ranks under dsmrun (shared memory).

Usage: doc_programs.py SOURCE_ROOT BUILD_ROOT DSMRUN [--pkg NAME...] -- CXX...
"""
import argparse
import concurrent.futures
import functools
import os
import pathlib
import re
import subprocess
import sys
import tempfile

LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
FENCE = re.compile(r'^```(\w*)\s*$')
MAIN = re.compile(r'^\s*int\s+main\s*\(', re.M)
RANKS = (1, 2, 3)


def pages(root):
    return [root / 'README.md'] + sorted((root / 'docs').rglob('*.md'))


def blocks(text):
    """(language, first line number, code) of every fenced block, and the
    text outside the blocks (blank lines where they were)."""
    found, prose, current = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if current is None and m:
            current = (m.group(1), number + 1, [])
            prose.append('')
        elif current is not None and line.startswith('```'):
            found.append((current[0], current[1], '\n'.join(current[2]) + '\n'))
            current = None
            prose.append('')
        elif current is not None:
            current[2].append(line)
            prose.append('')
        else:
            prose.append(line)
    return found, '\n'.join(prose)


def slug(heading):
    """GitHub's anchor for a heading."""
    text = heading.strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


@functools.lru_cache(maxsize=None)  # a page's headings, once however many links name it
def anchors(page):
    _, prose = blocks(page.read_text())
    seen, result = {}, set()
    for line in prose.splitlines():
        m = re.match(r'^#{1,6}\s+(.*)$', line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f'{base}-{n}')
    return result


def check_links(root):
    wrong, count = [], 0
    for page in pages(root):
        _, prose = blocks(page.read_text())
        for number, line in enumerate(prose.splitlines(), 1):
            for target in LINK.findall(line):
                if re.match(r'^[a-z]+:', target):
                    continue  # an address on the web
                count += 1
                where = f'{page.relative_to(root)}:{number}: {target}'
                path, _, anchor = target.partition('#')
                file = (page.parent / path).resolve() if path else page
                if root not in file.parents and file != root:
                    wrong.append(f'{where}: points outside the repository')
                    continue
                if not file.exists():
                    wrong.append(f'{where}: no such file')
                    continue
                if anchor and file.suffix == '.md' and anchor not in anchors(file):
                    wrong.append(f'{where}: {file.relative_to(root)} has no heading #{anchor}')
    return wrong, count


def programs(root):
    found = []
    for page in pages(root):
        for language, line, code in blocks(page.read_text())[0]:
            if language == 'cpp' and MAIN.search(code):
                found.append((page.relative_to(root), line, code))
    return found


def build_and_run(program, work, args, pkg_flags):
    page, line, code = program
    name = re.sub(r'\W', '_', f'{page.with_suffix("")}_{line}')
    source = work / f'{name}.cpp'
    source.write_text(code)
    binary = work / name
    compile_cmd = args.cxx + ['-std=c++20', '-O1', '-I', str(args.source / 'include'),
                              '-I', str(args.build / 'include'), str(source), '-o', str(binary),
                              '-pthread'] + pkg_flags
    where = f'{page}:{line}'
    built = subprocess.run(compile_cmd, capture_output=True, text=True)
    if built.returncode != 0:
        return f'{where}: does not compile as shown:\n{built.stderr[-4000:]}'
    for ranks in RANKS:
        try:
            ran = subprocess.run([args.dsmrun, '--transport', 'shm', '--timeout', '120', '-n', str(ranks),
                                  str(binary)], capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            return f'{where}: still running on {ranks} ranks after 180 s'
        if ran.returncode != 0:
            return (f'{where}: exited with {ran.returncode} on {ranks} rank(s):\n'
                    f'{ran.stdout[-2000:]}{ran.stderr[-2000:]}')
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('source', type=pathlib.Path)
    parser.add_argument('build', type=pathlib.Path)
    parser.add_argument('dsmrun')
    parser.add_argument('--pkg', action='append', default=[])
    parser.add_argument('cxx', nargs='+')
    args = parser.parse_args()
    args.source = args.source.resolve()
    args.build = args.build.resolve()

    failures, links = check_links(args.source)
    print(f'doc_programs: {links} links checked, {len(failures)} broken')

    found = programs(args.source)
    if not any(page.as_posix() == 'README.md' for page, _, _ in found):
        failures.append('README.md: no complete program (a ```cpp block with main) found')
    pkg_flags = []
    if args.pkg:
        pkg_flags = subprocess.run(['pkg-config', '--cflags', '--libs'] + args.pkg, check=True,
                                   capture_output=True, text=True).stdout.split()
    with tempfile.TemporaryDirectory(prefix='dsm-doc-programs.') as tmp:
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            results = list(pool.map(lambda p: build_and_run(p, pathlib.Path(tmp), args, pkg_flags), found))
    for program, result in zip(found, results):
        print(f'doc_programs: {program[0]}:{program[1]}: {"ok" if result is None else "FAILED"}')
    failures += [r for r in results if r is not None]
    print(f'doc_programs: {len(found)} programs compiled and run on {", ".join(map(str, RANKS))} ranks')
    for f in failures:
        print(f'FAIL: {f}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
