"Datasets from the outside: image folders, torchvision by name, the drawn colour set, conversions, the scale rule."
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import sar_ref.data as data
from sar_ref.data import (SHAPE_NAMES, ImageDataset, convert_images, dataset_to_tensors, draw_shapes, from_uint8,
                          image_folder_dataset, load_dataset, shapes_dataset, show_images, to_uint8, torchvision_dataset)
from sar_ref.msvq import scale_schedule

COLOURS = {'red': (220, 30, 40), 'green': (30, 200, 60), 'blue': (40, 60, 230)}


def _drawing(kind: str, colour: tuple, size: tuple, i: int) -> Image.Image:
    "One RGB picture: a coloured disc, square or triangle on a dark background, shifted by i."
    w, h = size
    img = Image.new('RGB', size, (10 + 5 * i, 10, 20))
    d, x, y, r = ImageDraw.Draw(img), w // 2 + i % 3 - 1, h // 2 - i % 2, min(w, h) // 3
    if kind == 'disc': d.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif kind == 'square': d.rectangle((x - r, y - r, x + r, y + r), fill=colour)
    else: d.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
    return img


@pytest.fixture
def rgb_folder(tmp_path):
    "pics/<class>/*.png: three classes of coloured shapes, 5 each, 40x48 (not square); one blue triangle sits a level deeper."
    root = tmp_path / 'pics'
    for (kind, (name, colour)) in zip(('disc', 'square', 'triangle'), COLOURS.items()):
        for i in range(5):
            folder = root / name / ('deeper' if i == 4 and name == 'blue' else '')
            folder.mkdir(parents=True, exist_ok=True)
            _drawing(kind, colour, (40, 48), i).save(folder / f'{kind}{i}.png')
    return root


@pytest.mark.parametrize('image_size', [32, 16])
@pytest.mark.parametrize('channels', [1, 3])
def test_folder_loads_end_to_end(rgb_folder, image_size, channels):
    ds = image_folder_dataset(rgb_folder, image_size=image_size, channels=channels, test_fraction=0.2)
    assert isinstance(ds, ImageDataset) and ds.name == 'pics'
    assert ds.class_names == ('blue', 'green', 'red')                                # sorted sub-folder names
    assert (ds.channels, ds.image_size, ds.n_classes) == (channels, image_size, 3)
    assert ds.train_images.shape == (12, channels, image_size, image_size) and ds.test_images.shape[0] == 3
    assert sorted(ds.test_labels.tolist()) == [0, 1, 2]                             # one of each class (20% of 5)
    assert ds.train_images.dtype == torch.float32 and ds.train_labels.dtype == torch.int64
    assert ds.train_images.min() >= -1 and ds.train_images.max() <= 1
    if channels == 3:                                                                 # the centre pixel has the class colour
        names = ds.class_names
        for x, y in zip(ds.train_images, ds.train_labels):
            centre = to_uint8(x[None])[0, image_size // 2, image_size // 2].int()
            assert (centre - torch.tensor(COLOURS[names[y]])).abs().max() <= 40, (names[y], centre)


def test_folder_split_is_seeded(rgb_folder):
    a, b = image_folder_dataset(rgb_folder, seed=1), image_folder_dataset(rgb_folder, seed=1)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    c = image_folder_dataset(rgb_folder, seed=2)
    assert not torch.equal(a.train_images, c.train_images)
    full = image_folder_dataset(rgb_folder, test_fraction=0)
    assert len(full.train_labels) == 15 and len(full.test_labels) == 0 and full.test_images.shape == (0, 3, 32, 32)


def test_exact_pixels_at_native_size(tmp_path):
    "A 32x32 PNG loads back exactly: no resize, no colour change."
    u8 = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    (tmp_path / 'flat').mkdir()
    for i, im in enumerate(u8): Image.fromarray(im.numpy()).save(tmp_path / 'flat' / f'{i}.png')
    ds = image_folder_dataset(tmp_path / 'flat', test_fraction=0)
    assert ds.class_names == ('flat',)
    assert {to_uint8(x[None]).numpy().tobytes() for x in ds.train_images} == {im[None].numpy().tobytes() for im in u8}


def test_resize_is_shorter_side_then_centre_crop(tmp_path):
    "A 60x20 image whose middle third is white: after the crop only the white middle is left."
    img = np.zeros((20, 60, 3), np.uint8); img[:, 20:40] = 255
    (tmp_path / 'one').mkdir(); Image.fromarray(img).save(tmp_path / 'one' / 'wide.png')
    ds = image_folder_dataset(tmp_path / 'one', image_size=10, test_fraction=0)
    assert to_uint8(ds.train_images)[0, :, 2:8].min() == 255                          # (1, 10, 10, 3)


def test_flat_folder_is_one_class(rgb_folder):
    ds = image_folder_dataset(rgb_folder / 'red', channels=1)
    assert ds.class_names == ('red',) and set(ds.train_labels.tolist()) == {0}
    with pytest.raises(ValueError, match="path=.*found one class only \\('red'\\); require_classes=True"):
        image_folder_dataset(rgb_folder / 'red', require_classes=True)
    assert image_folder_dataset(rgb_folder, require_classes=True).n_classes == 3


def test_folder_errors(tmp_path, rgb_folder):
    with pytest.raises(FileNotFoundError, match="path=.*no such folder"): image_folder_dataset(tmp_path / 'missing')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='path=.*no images'): image_folder_dataset(tmp_path / 'empty')
    (tmp_path / 'file.png').write_bytes(b'x')
    with pytest.raises(ValueError, match='is a file; expected a folder'): image_folder_dataset(tmp_path / 'file.png')
    with pytest.raises(TypeError, match='path=3'): image_folder_dataset(3)
    (rgb_folder / 'green' / 'notes.txt').write_text('hello')
    with pytest.raises(ValueError, match=r'1 file\(s\) are not images \(green/notes.txt\)'): image_folder_dataset(rgb_folder)
    (rgb_folder / 'green' / 'notes.txt').unlink()
    (rgb_folder / 'red' / 'broken.png').write_bytes(b'not a png at all')
    with pytest.raises(ValueError, match='red/broken.png is not a readable image'): image_folder_dataset(rgb_folder)
    (rgb_folder / 'red' / 'broken.png').unlink()
    (rgb_folder / 'yellow').mkdir()
    with pytest.raises(ValueError, match="class folder 'yellow' holds no images"): image_folder_dataset(rgb_folder)
    (rgb_folder / 'yellow').rmdir()
    _drawing('disc', (1, 2, 3), (8, 8), 0).save(rgb_folder / 'stray.png')
    with pytest.raises(ValueError, match='next to sub-folders'): image_folder_dataset(rgb_folder)
    (rgb_folder / 'stray.png').unlink()
    (rgb_folder / '.hidden.txt').write_text('ignored')                                  # hidden files are skipped
    assert image_folder_dataset(rgb_folder).n_classes == 3


@pytest.mark.parametrize('kw, match', [(dict(image_size=0), 'image_size=0'), (dict(image_size=16.0), 'image_size=16.0'),
                                       (dict(channels=2), 'channels=2'), (dict(test_fraction=1.0), 'test_fraction=1.0'),
                                       (dict(test_fraction=-0.1), 'test_fraction=-0.1'), (dict(seed=-1), 'seed=-1')])
def test_folder_bad_options(rgb_folder, kw, match):
    with pytest.raises(ValueError, match=match): image_folder_dataset(rgb_folder, **kw)


class FakeTorchvision:
    "Stands in for a torchvision class that takes `train=`: PIL images of mixed sizes and modes, int labels."
    classes = ['zero', 'one']
    calls = []

    def __init__(self, root, train=True, download=True):
        FakeTorchvision.calls.append((root, train, download))
        n = 6 if train else 4
        self.items = [(Image.new('RGB' if i % 2 else 'L', (20 + i, 24), (200, 10, 10) if i % 2 else 90), i % 2) for i in range(n)]

    def __len__(self): return len(self.items)
    def __getitem__(self, i): return self.items[i]


class FakeSplitTorchvision(FakeTorchvision):
    "A torchvision class that takes `split=` and has no `classes`."
    classes = None

    def __init__(self, root, split='train', download=True): super().__init__(root, split == 'train', download)


def test_torchvision_conversion_offline(monkeypatch, tmp_path):
    import torchvision.datasets
    monkeypatch.setattr(torchvision.datasets, 'CIFAR10', FakeTorchvision)
    FakeTorchvision.calls = []
    ds = torchvision_dataset('cifar-10', root=tmp_path, image_size=16, channels=3, download=False)
    assert FakeTorchvision.calls == [(str(tmp_path), True, False), (str(tmp_path), False, False)]
    assert ds.name == 'CIFAR10' and ds.class_names == ('zero', 'one')
    assert ds.train_images.shape == (6, 3, 16, 16) and ds.test_images.shape == (4, 3, 16, 16)
    assert ds.train_labels.tolist() == [0, 1, 0, 1, 0, 1]
    u8 = to_uint8(ds.train_images)
    assert u8[1, 8, 8].tolist() == [200, 10, 10] and u8[0, 8, 8].tolist() == [90, 90, 90]   # RGB kept, grey repeated
    assert torchvision_dataset('CIFAR10', root=tmp_path, channels=1, n_train=2, n_test=1).train_images.shape == (2, 1, 32, 32)
    assert load_dataset('cifar10', 8, root=tmp_path, n_train=3).train_images.shape == (3, 3, 8, 8)
    monkeypatch.setattr(torchvision.datasets, 'SVHN', FakeSplitTorchvision)
    svhn = torchvision_dataset('svhn', root=tmp_path)
    assert svhn.class_names == ('0', '1') and svhn.channels == 3                   # names from the labels
    monkeypatch.setattr(torchvision.datasets, 'MNIST', FakeTorchvision)
    assert load_dataset('mnist', root=tmp_path).channels == 1                       # MNIST's default is grey


def test_torchvision_errors(tmp_path):
    with pytest.raises(ValueError, match="name='ImageNet-21k': .* expected one of CIFAR10, CIFAR100, MNIST"):
        torchvision_dataset('ImageNet-21k')
    with pytest.raises(ValueError, match='channels=4'): torchvision_dataset('CIFAR10', root=tmp_path, channels=4)
    with pytest.raises(RuntimeError, match="name='CIFAR10': torchvision could not load CIFAR10 .*download=False"):
        torchvision_dataset('CIFAR10', root=tmp_path, download=False)               # empty root, no download: no network used
    with pytest.raises(ValueError, match=r'ds\[0\]: expected \(PIL image'): dataset_to_tensors([(torch.zeros(3, 4, 4), 0)], 4, 3)
    with pytest.raises(ValueError, match='n=5'): dataset_to_tensors([(Image.new('L', (4, 4)), 0)], 4, 1, n=5)
    with pytest.raises(ValueError, match='ds: the dataset is empty'): dataset_to_tensors([], 4, 1)


def test_shapes_deterministic_with_stated_classes():
    a, b = shapes_dataset(200, 50, seed=7), shapes_dataset(200, 50, seed=7)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    assert not torch.equal(shapes_dataset(200, 50, seed=8).train_images, a.train_images)
    assert not torch.equal(a.train_images[:50], a.test_images)                       # test is its own draw
    assert a.class_names == SHAPE_NAMES and len(SHAPE_NAMES) == 10 and a.name == 'shapes'
    assert SHAPE_NAMES == ('circle', 'square', 'triangle', 'diamond', 'plus', 'ring', 'cross', 'hexagon', 'star', 'crescent')
    assert torch.bincount(a.train_labels).tolist() == [20] * 10 and torch.bincount(a.test_labels).tolist() == [5] * 10
    assert (a.channels, a.image_size) == (3, 32) and a.train_images.min() >= -1 and a.train_images.max() <= 1
    grey = shapes_dataset(200, 50, image_size=16, channels=1, seed=7)
    assert grey.train_images.shape == (200, 1, 16, 16) and torch.equal(grey.train_labels, a.train_labels)


def test_shapes_are_coloured_and_drawn():
    x, y = draw_shapes(100, seed=0)
    assert (x.amax(1) - x.amin(1)).amax() > 0.5                                   # colours differ across channels
    covered = (x != x[:, :, :1, :1]).any(1).float().mean((1, 2))                  # share of pixels off the background
    assert covered.min() > 0.02 and covered.max() < 0.6
    ring = x[y == SHAPE_NAMES.index('ring')]
    assert len(ring) == 10
    with pytest.raises(ValueError, match='n=1.5'): draw_shapes(1.5)
    with pytest.raises(ValueError, match='image_size=0'): draw_shapes(4, image_size=0)


def test_image_dataset_validation():
    x, y = torch.rand(4, 3, 8, 8) * 2 - 1, torch.tensor([0, 1, 0, 1])
    ds = ImageDataset('t', x[:3], y[:3], x[3:], y[3:], ('a', 'b'))
    assert ds.split('train')[0] is ds.train_images and (ds.channels, ds.image_size, ds.n_classes) == (3, 8, 2)
    with pytest.raises(ValueError, match="split='val'"): ds.split('val')
    with pytest.raises(ValueError, match=r'train_images.shape=\(3, 3, 8, 4\)'): ImageDataset('t', x[:3, ..., :4], y[:3], x[3:], y[3:], 'ab')
    with pytest.raises(ValueError, match=r'test_labels: expected an int64 tensor of shape \(1,\)'):
        ImageDataset('t', x[:3], y[:3], x[3:], [1], 'ab')
    with pytest.raises(ValueError, match='train_images: values in'): ImageDataset('t', x[:3] + 2, y[:3], x[3:], y[3:], 'ab')
    with pytest.raises(ValueError, match=r'train_images: expected a float32'): ImageDataset('t', to_uint8(x[:3]), y[:3], x[3:], y[3:], 'ab')
    with pytest.raises(ValueError, match='class_names'): ImageDataset('t', x[:3], y[:3], x[3:], y[3:], ())


def test_uint8_round_trips_grey_and_colour():
    g = torch.randint(0, 256, (4, 9, 9), dtype=torch.uint8)
    assert torch.equal(to_uint8(from_uint8(g)), g) and from_uint8(g).shape == (4, 1, 9, 9)
    x = torch.rand(4, 1, 9, 9) * 2 - 1
    assert torch.equal(to_uint8(x), x.add(1).mul(127.5).round().to(torch.uint8)[:, 0])   # grey: (N, H, W), as before
    c = torch.randint(0, 256, (4, 9, 9, 3), dtype=torch.uint8)
    assert torch.equal(to_uint8(from_uint8(c)), c) and from_uint8(c).shape == (4, 3, 9, 9)
    assert to_uint8(torch.zeros(2, 3, 5, 5)).shape == (2, 5, 5, 3)
    assert torch.equal(convert_images(from_uint8(g), channels=3)[:, 1], from_uint8(g)[:, 0])


def test_show_images_grey_and_colour():
    x = torch.rand(6, 3, 8, 8) * 2 - 1
    fig, fig_u8 = show_images(x, nrow=3), show_images(to_uint8(x), nrow=3)
    rgb = fig.axes[0].images[0].get_array()
    assert rgb.shape == (8, 8, 3)
    np.testing.assert_allclose(rgb, x[0].permute(1, 2, 0).add(1).div(2).numpy(), atol=1e-6)
    np.testing.assert_allclose(fig_u8.axes[0].images[0].get_array(), rgb, atol=1 / 255)
    grey = x[:, :1]
    fig_g = show_images(grey)
    im = fig_g.axes[0].images[0]
    assert im.get_cmap().name == 'gray' and im.get_clim() == (-1, 1)
    np.testing.assert_allclose(im.get_array(), grey[0, 0].numpy())                  # grey floats drawn as before
    np.testing.assert_allclose(show_images(to_uint8(grey)).axes[0].images[0].get_array(), grey[0, 0].numpy(), atol=1 / 127)
    with pytest.raises(ValueError, match=r'images.shape=\(2, 8, 8, 3\)'): show_images(torch.zeros(2, 8, 8, 3))   # float must be channels-first
    with pytest.raises(TypeError, match='images: expected a torch.Tensor'): show_images(np.zeros((2, 8, 8)))
    plt.close('all')


def test_load_dataset_specs(rgb_folder):
    ds = load_dataset(f'folder:{rgb_folder}', 16, 1)
    assert (ds.n_classes, ds.image_size, ds.channels) == (3, 16, 1)
    assert load_dataset('shapes', n_train=10, n_test=10, seed=3).train_images.shape == (10, 3, 32, 32)
    with pytest.raises(ValueError, match="spec='imagenet': expected one of shapes, fashion_mnist, mnist, cifar10, folder:PATH"):
        load_dataset('imagenet')
    with pytest.raises(ValueError, match="spec='folder:': expected folder:PATH"): load_dataset('folder:')
    with pytest.raises(ValueError, match="spec='shapes:big'"): load_dataset('shapes:big')
    with pytest.raises(ValueError, match='spec=3'): load_dataset(3)
    with pytest.raises(ValueError, match='image_size=-4'): load_dataset('shapes', image_size=-4)


def test_fashion_mnist_dataset_when_installed():
    try: data.find_fashion_mnist(download=False)
    except FileNotFoundError: pytest.skip('Fashion-MNIST files are not on this machine (and tests never download)')
    ds = load_dataset('fashion_mnist', n_train=20, n_test=10)
    assert (ds.channels, ds.image_size, ds.n_classes) == (1, 32, 10)
    assert torch.equal(ds.train_images, data.load_fashion_mnist('train', n=20)[0])
    assert load_dataset('fashion_mnist', 16, 3, n_train=20, n_test=10).train_images.shape == (20, 3, 16, 16)


def test_scale_schedule():
    assert scale_schedule(16) == (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)                   # VAR's ImageNet-256
    assert scale_schedule(8) == (1, 2, 3, 4, 6, 8)                                    # this project's
    for side in range(1, 200):
        p = scale_schedule(side)
        assert isinstance(p, tuple) and p[0] == 1 and p[-1] == side and all(a < b for a, b in zip(p, p[1:]))
    for bad in (0, -3, 2.5, 8.0, '8', None, True):
        with pytest.raises(ValueError, match='latent_side='): scale_schedule(bad)
    with pytest.raises(ValueError, match='ratio=0.5'): scale_schedule(8, ratio=0.5)
