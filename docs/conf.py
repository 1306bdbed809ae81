"""Sphinx configuration for the sar_ref site: the staged notebooks (see make_site.py) with their stored outputs, and
the API reference of the exported modules."""
import inspect
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # document this checkout's sar_ref
from make_site import settings  # noqa: E402

ini = settings()
project = ini['lib_name']
author = ini['author']
copyright = ini['copyright']
release = version = ini['version']

extensions = ['myst_nb', 'sphinx.ext.autodoc', 'sphinx.ext.autosummary', 'sphinx.ext.viewcode', 'sphinx.ext.mathjax']
exclude_patterns = ['_static', '**.ipynb_checkpoints']

# Notebooks are rendered with the outputs they were committed with; nothing is executed.
nb_execution_mode = 'off'
nb_merge_streams = True
myst_enable_extensions = ['dollarmath', 'amsmath']
myst_heading_anchors = 3

# Docstrings are one-liners written with Markdown backticks: let `name` link to the name where it is documented.
default_role = 'py:obj'
autodoc_member_order = 'bysource'
autodoc_inherit_docstrings = False  # else every undocumented forward shows nn.Module.forward's docstring
add_module_names = False
autodoc_preserve_defaults = True
autodoc_typehints_format = 'short'
python_use_unqualified_type_names = True
autosummary_generate = False

# MathJax from the site's own static files, so pages typeset without a network.
mathjax_path = 'mathjax/tex-chtml.js'  # staged into the source folder's _static by make_site.py
html_static_path = ['static']
html_css_files = ['site.css']
html_theme = 'sphinx_book_theme'
html_title = project
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {
    'repository_url': ini['git_url'],
    'repository_branch': ini['branch'],
    'use_repository_button': True,
    'use_download_button': False,
    'home_page_in_toc': True,
    'show_navbar_depth': 1,
    'navigation_with_keys': False,
}


_code_span = re.compile(r'(`[^`]+`)')
_rst_special = re.compile(r'([\\*|_])')


def markdown_docstring(app, what, name, obj, options, lines):
    "Docstrings are written in Markdown, as nbdev renders them: keep `code` spans and escape what rST would parse."
    if what in ('data', 'attribute') and ' '.join(lines).split() == (inspect.getdoc(type(obj)) or '').split():
        lines[:] = []  # a constant has no docstring of its own; not the one of its type
    for i, line in enumerate(lines):
        lines[i] = ''.join(part if _code_span.fullmatch(part) else _rst_special.sub(r'\\\1', part)
                           for part in _code_span.split(line))


def static_files(app, config):
    "The staging folder's `_static` (MathJax) is copied into the site."
    config.html_static_path.append(str(Path(app.srcdir) / '_static'))


def setup(app):
    app.connect('config-inited', static_files)
    app.connect('autodoc-process-docstring', markdown_docstring)
