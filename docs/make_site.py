"""Build the website: stage the notebooks and the API pages as a Sphinx source folder, the way nbdev renders them,
then render it to HTML with Sphinx (docs/conf.py), failing on any warning.

The notebooks in `nbs/` stay untouched: each is copied into the staging folder with its nbdev directive lines
(`#| export`, `#| slow`, ...) removed, cells that only held directives or were marked `#| hide` dropped, links written
for the README (`nbs/00_data.ipynb`) pointed at the pages, and a line linking to the module it exports. One page per
exported module documents its public names (`__all__`, in the order the notebook defines them). The site's table of
contents follows the notebooks' numbers, so a new `nbs/NN_name.ipynb` appears in it without any change here.

Usage: python docs/make_site.py [BUILD_DIR]   (default docs/_build; the site is BUILD_DIR/html)
"""
import ast
import configparser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'
BUILD = ROOT / 'docs' / '_build'
MATHJAX = ROOT / 'docs' / '_vendor' / 'node_modules' / 'mathjax' / 'es5'
_directive = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
_nbs_link = re.compile(r'(\]\(|src=")nbs/')


def notebooks():
    "The numbered notebooks in reading order."
    return sorted(NBS.glob('[0-9][0-9]_*.ipynb'))


def split_directives(source):
    "The leading nbdev directives of a code cell as {name: value}, and the source without them."
    lines, directives = source.splitlines(), {}
    while lines and (m := _directive.match(lines[0])):
        directives[m.group(1)] = m.group(2)
        lines.pop(0)
    while lines and not lines[0].strip(): lines.pop(0)
    return directives, '\n'.join(lines)


def _tag(cell, tag):
    cell.setdefault('metadata', {}).setdefault('tags', []).append(tag)


def code_cell(cell):
    "The cell as the site shows it, or None when it is hidden."
    directives, source = split_directives(''.join(cell['source']))
    if 'hide' in directives or directives.get('include') == 'false': return None
    if not source.strip() and not cell.get('outputs'): return None
    cell['source'] = source
    if directives.get('echo') == 'false' or not source.strip(): _tag(cell, 'remove-input')
    if directives.get('output') == 'false': _tag(cell, 'remove-output')
    return cell


def markdown_cell(cell, names=None):
    "README-style links (`nbs/00_data.ipynb`) point at the pages; a code span naming an export links to its entry."
    source = _nbs_link.sub(r'\1', ''.join(cell['source']))
    if names: source = ''.join(part if part.startswith('```') else _link_names(part, names)
                               for part in _fence.split(source))
    cell['source'] = source
    return cell


_fence = re.compile(r'(```.*?```)', re.S)
_code = re.compile(r'(?<!`)`([A-Za-z_][\w.]*)`(?!`)')


def _link_names(text, names):
    "Code spans that name an exported definition (`fit`, `sar_ref.training.fit`) become links to it, as nbdev does."
    def link(m):
        target = names.get(m.group(1).removeprefix('sar_ref.'))
        return f'{{py:obj}}`{m.group(1)} <{target}>`' if target else m.group(0)
    return _code.sub(link, text)


def exported_names(modules):
    "{name or module.name: sar_ref.module.name} for every public name; a name two modules export stays unlinked."
    names, seen = {}, {}
    for module in modules:
        for name, _ in public_names(module):
            names[f'{module}.{name}'] = f'sar_ref.{module}.{name}'
            seen.setdefault(name, []).append(module)
    names.update({n: f'sar_ref.{ms[0]}.{n}' for n, ms in seen.items() if len(ms) == 1})
    return names


def default_exp(nb):
    "The module a notebook exports to, or None."
    for cell in nb['cells']:
        if cell['cell_type'] == 'code':
            directives, _ = split_directives(''.join(cell['source']))
            if 'default_exp' in directives: return directives['default_exp']
    return None


def stage_notebook(path, dest, names=None, extra_cells=()):
    "Copy one notebook into `dest`, rendered as nbdev would."
    nb = json.loads(path.read_text())
    module = default_exp(nb)
    cells = []
    for cell in nb['cells']:
        cell = dict(cell, metadata=dict(cell.get('metadata', {})))
        if cell['cell_type'] == 'code': cell = code_cell(cell)
        elif cell['cell_type'] == 'markdown': cell = markdown_cell(cell, names)
        if cell is not None: cells.append(cell)
    if module:  # after the title and its one-line summary
        title = next((i for i, c in enumerate(cells) if c['cell_type'] == 'markdown'), -1)
        link = f'Exported to {{doc}}`sar_ref.{module} <api/sar_ref.{module}>`.'
        cells.insert(title + 1, _markdown(link, 'exported-module'))
    nb['cells'] = cells + list(extra_cells)
    nb['metadata'] = dict(nb.get('metadata', {}), language_info={'name': 'python'})
    (dest / path.name).write_text(json.dumps(nb, indent=1))


def _markdown(text, id):
    return {'cell_type': 'markdown', 'id': id, 'metadata': {}, 'source': text}


def _toctree(caption, entries):
    return '\n'.join(['```{toctree}', ':hidden:', f':caption: {caption}', '', *entries, '```'])


def public_names(module):
    "(name, kind) for each name in the module's `__all__`, kind one of function, class, data."
    tree = ast.parse((ROOT / 'sar_ref' / f'{module}.py').read_text())
    kinds, names = {}, []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)): kinds[node.name] = 'function'
        elif isinstance(node, ast.ClassDef): kinds[node.name] = 'class'
        elif isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '__all__' for t in node.targets):
            names = ast.literal_eval(node.value)
    return [(n, kinds.get(n, 'data')) for n in names]


def module_summary(module):
    "A module's docstring up to its first colon, semicolon or full stop outside brackets and code."
    doc = ' '.join((ast.get_docstring(ast.parse((ROOT / 'sar_ref' / f'{module}.py').read_text())) or '').split())
    depth, code = 0, False
    for i, c in enumerate(doc):
        if c == '`': code = not code
        elif not code and c in '([': depth += 1
        elif not code and c in ')]': depth -= 1
        elif not code and depth == 0 and c in ':;.' and doc[i + 1:i + 2] in (' ', ''): return doc[:i]
    return doc


def api_page(module, notebook):
    "An rST page documenting `sar_ref.<module>`."
    names = public_names(module)
    title = f'sar_ref.{module}'
    lines = [title, '=' * len(title), '', f'.. automodule:: sar_ref.{module}', '',
             f'Built in the notebook :doc:`{notebook} <../{notebook}>`.', '']
    if names:
        lines += ['.. autosummary::', '   :nosignatures:', '', *[f'   {n}' for n, _ in names], '']
    for name, kind in names:
        options = ['   :members:', '   :show-inheritance:'] if kind == 'class' else []
        lines += [f'.. auto{kind}:: {name}', *options, '']
    return '\n'.join(lines)


def api_index(modules):
    "The reference's landing page: one row per module."
    lines = ['API reference', '=============', '',
             'Every module is generated from one notebook; the notebook builds it step by step, this reference lists '
             'what it exports.', '', '.. list-table::', '   :header-rows: 1', '', '   * - module', '     - notebook',
             '     - what it holds']
    for module, notebook in modules:
        lines += [f'   * - :doc:`sar_ref.{module}`', f'     - :doc:`{notebook} <../{notebook}>`',
                  f'     - {module_summary(module)}']
    lines += ['', '.. toctree::', '   :hidden:', '', *[f'   sar_ref.{m}' for m, _ in modules], '']
    return '\n'.join(lines)


def _other_bundles(folder, names):
    "MathJax's combined files other than the one the site loads (its components load from the subfolders)."
    return [n for n in names if folder == str(MATHJAX) and n.endswith('.js') and n != 'tex-chtml.js']


def stage(dest):
    "Fill `dest` afresh with everything Sphinx reads."
    if not (MATHJAX / 'tex-chtml.js').exists():
        sys.exit(f'MathJax is missing ({MATHJAX.relative_to(ROOT)}): run `make install` first')
    if dest.exists(): shutil.rmtree(dest)
    (dest / 'api').mkdir(parents=True)
    pages = notebooks()
    modules = [(m, p.stem) for p in pages if (m := default_exp(json.loads(p.read_text())))]
    names = exported_names([m for m, _ in modules])
    for path in pages: stage_notebook(path, dest, names)
    toc = [_markdown(_toctree('Notebooks', [p.stem for p in pages]), 'toc-notebooks'),
           _markdown(_toctree('Reference', ['api/index']), 'toc-reference')]
    stage_notebook(NBS / 'index.ipynb', dest, names, extra_cells=toc)
    for module, notebook in modules: (dest / 'api' / f'sar_ref.{module}.rst').write_text(api_page(module, notebook))
    (dest / 'api' / 'index.rst').write_text(api_index(modules))
    if (NBS / 'images').is_dir(): shutil.copytree(NBS / 'images', dest / 'images')
    shutil.copytree(MATHJAX, dest / '_static' / 'mathjax', ignore=_other_bundles)


def settings():
    "The project's settings.ini, for conf.py."
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'settings.ini')
    return cfg['DEFAULT']


def build(out=BUILD):
    "Stage the sources in `out`/src and render the site afresh into `out`/html; raise if Sphinx warns."
    stage(out / 'src')
    for old in (out / 'html', out / 'doctrees'):
        if old.exists(): shutil.rmtree(old)
    subprocess.run([sys.executable, '-m', 'sphinx', '-b', 'html', '-W', '--keep-going', '-q', '-c', str(ROOT / 'docs'),
                    '-d', str(out / 'doctrees'), str(out / 'src'), str(out / 'html')], check=True)
    return out / 'html'


if __name__ == '__main__':
    if len(sys.argv) > 2: sys.exit(__doc__)
    try: site = build(Path(sys.argv[1]).resolve() if len(sys.argv) == 2 else BUILD)
    except subprocess.CalledProcessError: sys.exit('docs: the build warned or failed (messages above)')
    print(f'docs: open {site.relative_to(ROOT) if site.is_relative_to(ROOT) else site}/index.html')
