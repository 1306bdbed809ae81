"The evaluation module from the outside: Frechet distance, precision/recall, sample files, caching and bad input."
import numpy as np
import pytest
import torch

import sar_ref.evaluation as ev
from sar_ref.data import load_fashion_mnist, to_uint8
from sar_ref.evaluation import (ClassifierConfig, Classifier, evaluate_npz, evaluate_samples, frechet_distance,
                                frechet_from_stats, precision_recall)


def gen(seed=0): return torch.Generator().manual_seed(seed)


@pytest.fixture(scope='module')
def clf():
    "An untrained tiny classifier: the metrics only need some fixed feature map."
    torch.manual_seed(0)
    return Classifier(ClassifierConfig.tiny()).eval()


def test_fd_of_a_set_with_itself_is_zero():
    a = torch.randn(300, 16, generator=gen())
    assert frechet_distance(a, a) < 1e-9
    assert frechet_distance(a.numpy(), a.numpy()) < 1e-9             # numpy arrays work too


def test_fd_is_symmetric_and_grows_with_a_shift():
    a, b = torch.randn(400, 8, generator=gen(1)), torch.randn(400, 8, generator=gen(2))
    assert abs(frechet_distance(a, b) - frechet_distance(b, a)) < 1e-9
    fds = [frechet_distance(a, b + s) for s in (0.0, 0.5, 1.0, 2.0)]
    assert all(x < y for x, y in zip(fds, fds[1:]))
    shift = 8 * 2.0 ** 2 + 2 * 2.0 * (b.double().mean(0) - a.double().mean(0)).sum().item()   # |d + s|^2 - |d|^2
    assert abs((fds[3] - fds[0]) - shift) < 1e-6                     # a shift moves the means only


def test_fd_matches_the_gaussian_closed_form():
    mu1, mu2 = torch.zeros(4, dtype=torch.float64), torch.tensor([1.0, 0, 0, 2], dtype=torch.float64)
    sd1, sd2 = torch.tensor([1.0, 2, 3, 4], dtype=torch.float64), torch.tensor([2.0, 2, 1, 4], dtype=torch.float64)
    expected = 1 + 4 + (1 + 0 + 4 + 0)
    assert abs(frechet_from_stats(mu1, sd1.square().diag(), mu2, sd2.square().diag()) - expected) < 1e-10
    x1 = mu1 + sd1 * torch.randn(100_000, 4, generator=gen(3), dtype=torch.float64)
    x2 = mu2 + sd2 * torch.randn(100_000, 4, generator=gen(4), dtype=torch.float64)
    assert abs(frechet_distance(x1, x2) - expected) < 0.03 * expected


def test_fd_is_stable_with_singular_covariances():
    a, b = torch.randn(10, 50, generator=gen(5)), torch.randn(10, 50, generator=gen(6))   # n < d: rank-deficient
    assert frechet_distance(a, a) < 1e-8
    fd = frechet_distance(a, b)
    assert np.isfinite(fd) and fd > 0


def test_precision_recall_bounds_and_extremes():
    real = torch.randn(500, 8, generator=gen(7))
    for fake in (torch.randn(300, 8, generator=gen(8)) * 2, real[:100] + 0.1, torch.randn(50, 8, generator=gen(9)) + 3):
        p, r = precision_recall(real, fake)
        assert 0 <= p <= 1 and 0 <= r <= 1
    assert precision_recall(real, real) == (1.0, 1.0)
    assert precision_recall(real, real + 50) == (0.0, 0.0)
    p, r = precision_recall(real, real[:1].repeat(200, 1) + 1e-3 * torch.randn(200, 8, generator=gen(10)))
    assert p == 1.0 and r < 0.05                                     # a collapsed generator: fidelity without diversity


@pytest.mark.parametrize('call, match', [
    (lambda: frechet_distance(torch.randn(1, 3), torch.randn(4, 3)), r'feats_a.shape=\(1, 3\)'),
    (lambda: frechet_distance(torch.randn(4, 3), torch.randn(4, 2)), r'feats_b.shape=\(4, 2\)'),
    (lambda: frechet_distance(torch.randn(4, 3, 1), torch.randn(4, 3)), r'expected \(N, D\)'),
    (lambda: precision_recall(torch.randn(10, 3), torch.randn(10, 3), k=0), 'k=0'),
    (lambda: precision_recall(torch.randn(10, 3), torch.randn(3, 3), k=3), r'fake_feats.shape=\(3, 3\).*k=3'),
    (lambda: precision_recall(torch.randn(10, 3), torch.randn(10, 4)), r'fake_feats.shape=\(10, 4\)'),
])
def test_metric_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match): call()


def test_evaluate_samples_and_bad_input(clf):
    x, y = load_fashion_mnist('test', n=200)
    ref = ev.real_features(300, clf)
    res = evaluate_samples(x, y, classifier=clf, real_feats=ref)
    assert set(res) == {'fd', 'accuracy', 'precision', 'recall', 'n', 'n_real'}
    assert (res['n'], res['n_real']) == (200, 300) and 0 <= res['accuracy'] <= 1
    with pytest.raises(ValueError, match=r'labels.shape=\(199,\)'): evaluate_samples(x, y[:199], classifier=clf, real_feats=ref)
    with pytest.raises(ValueError, match=r'images.shape=\(200, 3, 32, 32\)'):
        evaluate_samples(x.repeat(1, 3, 1, 1), y, classifier=clf, real_feats=ref)
    with pytest.raises(ValueError, match='images.shape=\\(1, 1, 32, 32\\)'): evaluate_samples(x[:1], y[:1], classifier=clf, real_feats=ref)
    with pytest.raises(ValueError, match='class ids'): evaluate_samples(x, y + 5, classifier=clf, real_feats=ref)


def test_evaluate_npz_matches_in_memory(clf, tmp_path):
    x, y = load_fashion_mnist('test', n=100)
    noisy = (x + 0.2 * torch.randn(x.shape, generator=gen(11))).clamp(-1, 1)
    path = tmp_path / 'samples.npz'
    np.savez(path, images=to_uint8(noisy).numpy(), labels=y.numpy())
    ref = ev.real_features(200, clf)
    assert evaluate_npz(path, classifier=clf, real_feats=ref) == evaluate_samples(noisy, y, classifier=clf, real_feats=ref)
    np.savez(tmp_path / 'bad.npz', images=noisy.numpy(), labels=y.numpy())
    with pytest.raises(ValueError, match='expected uint8'): evaluate_npz(tmp_path / 'bad.npz', classifier=clf)
    np.savez(tmp_path / 'short.npz', images=to_uint8(noisy).numpy(), labels=y[:50].numpy())
    with pytest.raises(ValueError, match=r'labels.shape=\(50,\)'): evaluate_npz(tmp_path / 'short.npz', classifier=clf)
    with pytest.raises(FileNotFoundError, match='no such file'): evaluate_npz(tmp_path / 'missing.npz', classifier=clf)


def test_classifier_is_trained_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv('SAR_REF_CHECKPOINTS', str(tmp_path))
    model = ev.load_or_train_classifier(steps=5, batch_size=32, n_train=256, cfg=ClassifierConfig.tiny(), progress=False)
    assert (tmp_path / 'classifier.pt').is_file() and isinstance(model, Classifier) and not model.training
    def no_training(*a, **k): raise AssertionError('retrained although cached')
    monkeypatch.setattr(ev, 'train_classifier', no_training)
    again = ev.load_or_train_classifier()
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(), again.state_dict().values()))
