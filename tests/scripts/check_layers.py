#!/usr/bin/env python3
"""Checks that dsm's headers include only their own layer or the layers below
(docs/maintainers.md): arch < transport < runtime < address < coherence <
containers < dsm.hpp. error.hpp, config.hpp and detail/ serve every layer
and include nothing else of dsm.
Usage: check_layers.py INCLUDE_DIR (the directory holding dsm/)."""
import pathlib
import re
import sys

LAYERS = [  # (name, headers as paths under dsm/: a folder ends with '/')
    ('arch', ['arch/', 'arch.hpp']),
    ('transport', ['transport/', 'transport.hpp']),
    ('runtime', ['runtime/', 'team.hpp', 'collectives.hpp', 'operators.hpp']),
    ('address', ['global_ptr.hpp', 'allocate.hpp', 'rma.hpp', 'rma_noncontiguous.hpp', 'lock.hpp', 'signal.hpp', 'distribution.hpp',
                 'rpc.hpp', 'dist_object.hpp']),
    ('coherence', ['coherence/']),
    ('containers', ['shared_array.hpp', 'shared_var.hpp', 'global_ref.hpp', 'views.hpp', 'global_region.hpp',
                    'region_allocator.hpp']),
    ('umbrella', ['dsm.hpp']),
]
EVERY_LAYER = ['error.hpp', 'config.hpp', 'detail/']


def matches(path, patterns):
    return any(path.startswith(p) if p.endswith('/') else path == p for p in patterns)


def layer_of(path):
    if matches(path, EVERY_LAYER):
        return None
    for level, (name, patterns) in enumerate(LAYERS):
        if matches(path, patterns):
            return level
    raise SystemExit(f'check_layers: dsm/{path} belongs to no layer: add it to LAYERS')


def main():
    root = pathlib.Path(sys.argv[1]) / 'dsm'
    headers = sorted(p for p in root.rglob('*.hpp*') if p.is_file())
    if len(headers) < 20:
        raise SystemExit(f'check_layers: only {len(headers)} headers under {root}: wrong directory?')
    include = re.compile(r'^\s*#\s*include\s*<dsm/([^>]+)>')
    wrong = []
    for header in headers:
        path = header.relative_to(root).as_posix().removesuffix('.in')
        own = layer_of(path)
        for number, line in enumerate(header.read_text().splitlines(), 1):
            m = include.match(line)
            if not m:
                continue
            target = layer_of(m.group(1))
            if own is not None and target is not None and target > own:
                wrong.append(f'dsm/{path}:{number}: the {LAYERS[own][0]} layer includes '
                             f'dsm/{m.group(1)} of the {LAYERS[target][0]} layer above it')
            if own is None and target is not None:
                wrong.append(f'dsm/{path}:{number}: a header every layer uses includes dsm/{m.group(1)}')
    for w in wrong:
        print(w)
    print(f'check_layers: {len(headers)} headers, {len(wrong)} includes upwards')
    return 1 if wrong else 0


if __name__ == '__main__':
    sys.exit(main())
