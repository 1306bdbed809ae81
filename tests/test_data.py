"The data module from the outside: sources, errors, subsets and value ranges."
import pytest, torch
import sar_ref.data as data
from sar_ref.data import load_fashion_mnist, find_fashion_mnist, make_loader


@pytest.fixture
def no_local_data(tmp_path, monkeypatch):
    "A machine with no cache, no Debian package and no network."
    monkeypatch.setenv('SAR_REF_DATA', str(tmp_path / 'cache'))
    monkeypatch.setattr(data, 'DEBIAN_DIR', tmp_path / 'not-installed')
    import torchvision.datasets
    def offline(*a, **k): raise RuntimeError('Error downloading train-images-idx3-ubyte.gz: network is unreachable')
    monkeypatch.setattr(torchvision.datasets, 'FashionMNIST', offline)


def test_missing_data_offline_names_the_fixes(no_local_data):
    with pytest.raises(FileNotFoundError) as e: find_fashion_mnist()
    msg = str(e.value)
    assert 'apt-get install dataset-fashion-mnist' in msg and "torchvision's downloader" in msg and 'network is unreachable' in msg


def test_missing_data_without_download(no_local_data):
    with pytest.raises(FileNotFoundError, match='download=False'): find_fashion_mnist(download=False)


def test_bad_root(tmp_path):
    with pytest.raises(FileNotFoundError, match='no Fashion-MNIST idx files'): find_fashion_mnist(root=tmp_path)
    with pytest.raises(TypeError, match='root=3'): find_fashion_mnist(root=3)


def test_explicit_root_is_staged(tmp_path, monkeypatch):
    "A folder holding the four (gzipped) idx files works as root, and is staged into the cache."
    if data._idx_source(data.DEBIAN_DIR) is None: pytest.skip("needs Debian's dataset-fashion-mnist as the source folder")
    monkeypatch.setenv('SAR_REF_DATA', str(tmp_path / 'cache'))
    x, y = load_fashion_mnist('test', n=10, root=data.DEBIAN_DIR)
    assert (tmp_path / 'cache' / 'FashionMNIST' / 'raw' / 't10k-images-idx3-ubyte').is_file()
    assert x.shape == (10, 1, 32, 32) and y.shape == (10,)


def _load_test_labels(cache: str) -> int:
    "In a fresh process with its own cache folder: load the test labels, return how many."
    import os
    os.environ['SAR_REF_DATA'] = cache
    from sar_ref.data import load_fashion_mnist
    return len(load_fashion_mnist('test')[1])


def test_parallel_first_loads_share_one_cache(tmp_path):
    "Processes staging into the same empty cache at once (nbdev_test's workers on a fresh machine) all succeed."
    if data._idx_source(data.DEBIAN_DIR) is None: pytest.skip("needs Debian's dataset-fashion-mnist as the source folder")
    import multiprocessing as mp
    with mp.get_context('spawn').Pool(4) as pool:
        counts = pool.map(_load_test_labels, [str(tmp_path / 'cache')] * 4)
    assert counts == [10_000] * 4
    raw = tmp_path / 'cache' / 'FashionMNIST' / 'raw'
    assert sorted(p.name for p in raw.iterdir()) == sorted(data.IDX_FILES)     # no staging folders left behind


def test_subsets_and_ranges():
    x, y = load_fashion_mnist('train', n=data.TEST_SUBSET)
    assert x.shape == (data.TEST_SUBSET, 1, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and int(y.min()) == 0 and int(y.max()) == 9
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    xt, yt = load_fashion_mnist('test')
    assert len(xt) == 10_000 and torch.bincount(yt).tolist() == [1000] * 10


@pytest.mark.parametrize('kw, match', [(dict(split='val'), "split='val'"), (dict(n=-5), 'n=-5'), (dict(n=1.5), 'n=1.5')])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match): load_fashion_mnist(**kw)


def test_loader_rejects_bad_batch_size():
    with pytest.raises(ValueError, match='batch_size=0'): make_loader(torch.zeros(4), batch_size=0)
    with pytest.raises(ValueError, match='batch_size=8'): make_loader(torch.zeros(4), batch_size=8)
