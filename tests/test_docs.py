"""The documentation website, opened in a headless Chromium with the network switched off: every page loads with its
title, its figures (decoded, not just referenced) and its mathematics typeset by the MathJax the site carries; every
internal link reaches an existing file and anchor; the notebooks appear in order, each with its title and figures.

The site is built by `make docs` (which `make test` runs first); it is rebuilt here when missing or older than its
sources. Chromium and chromedriver come from Debian (`make install`). Without them the tests fail under CI and are
skipped elsewhere (when the environment variable CI is unset)."""
import json
import os
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / 'docs' / '_build' / 'html'
sys.path.insert(0, str(ROOT / 'docs'))
import make_site  # noqa: E402

EXTERNAL = re.compile(r'^[a-z][a-z0-9+.-]*:', re.I)  # http:, mailto:, javascript:, data: ...


def sources():
    return [*ROOT.glob('nbs/*.ipynb'), *ROOT.glob('nbs/images/*'), *ROOT.glob('sar_ref/*.py'), *ROOT.glob('docs/*.py')]


@pytest.fixture(scope='session')
def site():
    "The built site, rebuilt when it is missing or older than a notebook, module or build script."
    index = SITE / 'index.html'
    if not index.exists() or max(p.stat().st_mtime for p in sources()) > index.stat().st_mtime: make_site.build()
    return SITE


def _unavailable(why):
    if os.environ.get('CI'): pytest.fail(f'{why}: `make install` installs it (apt: chromium chromium-driver)')
    pytest.skip(f'{why} (skipped because CI is unset; under CI this fails)')


@pytest.fixture(scope='session')
def browser():
    "Headless Debian Chromium through its chromedriver; host names resolve nowhere, so nothing loads from a network."
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    driver_path = shutil.which('chromedriver')
    if not (chromium and driver_path): _unavailable('chromium and chromedriver are not installed')
    try: from selenium import webdriver
    except ImportError: _unavailable('selenium is not installed')
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1400,1000',
                '--host-resolver-rules=MAP * ~NOTFOUND']:
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_script_timeout(60)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


# Runs in the page once it has loaded: waits for MathJax's first typeset, then reports what the page shows.
INSPECT = """
const done = arguments[arguments.length - 1];
const report = () => {
  const h1 = Array.from(document.querySelectorAll('h1')).find(h => h.textContent.trim());
  let heading = '';
  if (h1) { const c = h1.cloneNode(true); c.querySelectorAll('.headerlink').forEach(e => e.remove());
            heading = c.textContent.trim(); }
  const maths = Array.from(document.querySelectorAll('.math'));
  done({title: document.title, heading: heading,
        images: Array.from(document.images)
                  .map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
        articleImages: document.querySelectorAll('article img').length,
        math: maths.length, typeset: maths.filter(m => m.querySelector('mjx-container')).length,
        mathErrors: document.querySelectorAll('mjx-merror').length,
        links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
        remote: Array.from(document.querySelectorAll('script[src], link[rel=stylesheet]'))
                  .map(e => e.getAttribute('src') || e.getAttribute('href')).filter(u => /^(https?:)?\\/\\//.test(u)),
        nav: Array.from(document.querySelectorAll('.bd-sidenav a.reference')).map(a => a.getAttribute('href'))});
};
const images = Promise.all(Array.from(document.images).map(i => { i.loading = 'eager';
  return i.complete ? null : new Promise(r => { i.onload = i.onerror = r; }); }));
const mathjax = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
Promise.all([images, mathjax]).then(report, report);
"""


def inspect_page(driver, site, page):
    "What `page` (relative to `site`) shows in the browser."
    driver.get((site / page).as_uri())
    return driver.execute_async_script(INSPECT)


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k, v in attrs if k in ('id', 'name') and v)


def anchors(path, cache={}):
    "The ids a link's #fragment may name in an HTML file."
    if path not in cache:
        parser = _Ids()
        parser.feed(path.read_text(errors='replace'))
        cache[path] = parser.ids
    return cache[path]


def link_problem(site, page, href):
    "Why an internal link from `page` does not resolve, or None."
    if EXTERNAL.match(href) or href.startswith('//'): return None
    parts = urlsplit(href)
    target = (site / page).parent / unquote(parts.path) if parts.path else site / page
    target = Path(os.path.normpath(target))
    if site.resolve() not in target.resolve().parents: return f'{page}: link {href!r} leaves the site'
    if target.is_dir(): target = target / 'index.html'
    if not target.is_file(): return f'{page}: link {href!r}: no file {target.relative_to(site)}'
    if parts.fragment and target.suffix == '.html' and unquote(parts.fragment) not in anchors(target):
        return f'{page}: link {href!r}: no anchor #{parts.fragment} in {target.relative_to(site)}'
    return None


def page_problems(site, page, seen):
    "Everything wrong with one page, from what the browser reported (`seen`)."
    problems = []
    if not seen['heading']: problems.append(f'{page}: no heading')
    if not re.fullmatch(r'.+ [—-] sar_ref', seen['title']): problems.append(f'{page}: title {seen["title"]!r}')
    problems += [f'{page}: image {i["src"]!r} did not load' for i in seen['images'] if not i['ok']]
    if seen['typeset'] < seen['math']:
        problems.append(f'{page}: {seen["math"] - seen["typeset"]} of {seen["math"]} formulas not typeset')
    if seen['mathErrors']: problems.append(f'{page}: {seen["mathErrors"]} MathJax errors')
    problems += [f'{page}: loads {u} from the network' for u in seen['remote']]
    problems += [p for href in seen['links'] if (p := link_problem(site, page, href))]
    return problems


def site_pages(site):
    return sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html')
                  if not p.relative_to(site).parts[0].startswith(('_static', '_sources')))


def check_site(driver, site, pages=None):
    "Visit the pages (all by default); return ({page: what it shows}, [problems])."
    seen = {page: inspect_page(driver, site, page) for page in (pages or site_pages(site))}
    return seen, [p for page, s in seen.items() for p in page_problems(site, page, s)]


@pytest.fixture(scope='session')
def visited(site, browser):
    return check_site(browser, site)


def test_every_page_loads_with_title_figures_math_and_links(visited):
    seen, problems = visited
    assert len(seen) > 20, sorted(seen)
    assert not problems, '\n'.join(problems)


def _markdown_text(nb):
    "Markdown prose of a notebook without code spans and fences (where a $ is not mathematics)."
    text = '\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')
    return re.sub(r'```.*?```|`[^`]*`', '', text, flags=re.S)


def expected_images(nb):
    "Figures a notebook shows: image outputs of its visible cells and images in its prose."
    count = 0
    for cell in nb['cells']:
        if cell['cell_type'] == 'markdown':
            count += len(re.findall(r'!\[[^\]]*\]\([^)]+\)|<img\s', ''.join(cell['source'])))
        elif cell['cell_type'] == 'code' and make_site.code_cell(dict(cell)) is not None:
            count += sum(any(k.startswith('image/') for k in o.get('data', {})) for o in cell.get('outputs', []))
    return count


def test_notebooks_are_pages_in_order(visited):
    seen, _ = visited
    notebooks = make_site.notebooks()
    assert [p.stem for p in notebooks] == sorted(p.stem for p in notebooks)
    nav = [PurePosixPath(h).stem for h in seen['index.html']['nav'] if not EXTERNAL.match(h)]
    assert [s for s in nav if re.match(r'\d\d_', s)] == [p.stem for p in notebooks], nav
    for path in [ROOT / 'nbs' / 'index.ipynb', *notebooks]:
        nb = json.loads(path.read_text())
        page = seen[f'{path.stem}.html']
        title = re.search(r'^# (.+)$', ''.join(nb['cells'][0]['source']), re.M).group(1)
        assert page['heading'] == re.sub(r'[`*]', '', title).strip(), (path.name, page['heading'])
        assert page['title'].startswith(page['heading']), (path.name, page['title'])
        assert page['articleImages'] >= expected_images(nb), (path.name, page['articleImages'], expected_images(nb))
        if re.search(r'\$\$|\$[^$\s][^$]*\$', _markdown_text(nb)): assert page['math'] > 0, path.name
        module = make_site.default_exp(nb)
        if module: assert f'api/sar_ref.{module}.html' in page['links'], path.name


def test_api_pages_document_every_exported_name(site, visited):
    seen, _ = visited
    for module, _ in [(make_site.default_exp(json.loads(p.read_text())), p) for p in make_site.notebooks()]:
        if not module: continue
        assert seen[f'api/sar_ref.{module}.html']['title'].startswith(f'sar_ref.{module} '), module
        ids = anchors(site / 'api' / f'sar_ref.{module}.html')
        missing = [n for n, _ in make_site.public_names(module) if f'sar_ref.{module}.{n}' not in ids]
        assert not missing, (module, missing)


def test_the_check_catches_a_broken_link_a_missing_image_and_untypeset_math(site, browser, tmp_path):
    copy = tmp_path / 'html'
    shutil.copytree(site, copy)
    page = next(p for p in ['04_var.html', '03_msvq.html', '02_vqvae.html'] if (copy / p).exists())
    html = (copy / page).read_text()
    faults = '<a href="no_such_page.html">x</a><a href="index.html#no-such-anchor">y</a><img src="_images/none.png">'
    (copy / page).write_text(html.replace('</article>', faults + '</article>', 1))
    (copy / '_static' / 'mathjax' / 'tex-chtml.js').unlink()
    _, problems = check_site(browser, copy, [page])
    text = '\n'.join(problems)
    assert "'no_such_page.html'" in text and 'no-such-anchor' in text, text
    assert "'_images/none.png' did not load" in text, text
    assert 'formulas not typeset' in text, text
    _, clean = check_site(browser, copy, ['index.html'])  # no math on it: MathJax's absence harms nothing
    assert not clean, clean
