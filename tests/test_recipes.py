"""Every recipe of the main job builds its models and takes a training step; the images its stages train on, the
validation reference and the test split never share an image."""
import hashlib

import pytest
import torch

from sar_ref.data import as_dataset, train_split
from sar_ref.evaluation import Classifier, ClassifierConfig, classifier_train_size, held_out_images
from sar_ref.fmt import FMT
from sar_ref.msvq import MSVQConfig, MultiScaleVQVAE, scale_schedule
from sar_ref.study import BUDGETS, _n_train, fmt_config, var_config
from sar_ref.training import TrainConfig, make_optimizer
from sar_ref.var import VAR
from sar_ref.vqvae import VQVAE, PerceptualNet, VQVAEConfig

B = 4   # images per test step: the recipes' batch sizes matter for time, not for whether a step works


def step(model, batch):
    "One AdamW step on `batch`; the loss must be finite and some parameter must move."
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(model, TrainConfig())
    loss, _ = model.compute_loss(batch)
    assert torch.isfinite(loss), loss
    loss.backward()
    opt.step()
    after = [p for p in model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    return loss.item()


@pytest.mark.parametrize('name', [n for n in BUDGETS])
def test_each_recipe_builds_its_models_and_takes_a_step(name):
    b, g = BUDGETS[name], torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x, y = torch.rand(B, 1, 32, 32, generator=g) * 2 - 1, torch.arange(B) % 10
    step(Classifier(ClassifierConfig(**b.model_kw('classifier'))), (x, y))
    step(PerceptualNet(), (x, y))
    vq_cfg = VQVAEConfig.tiny(**b.model_kw('vqvae')) if b.tiny_models else VQVAEConfig(**b.model_kw('vqvae'))
    for family, tok in (('vqvae', VQVAE(vq_cfg)),
                        ('msvq', MultiScaleVQVAE(MSVQConfig(**{**vars(vq_cfg), 'patch_nums': scale_schedule(vq_cfg.latent_size)})))):
        w = b.train_kw(family).get('perceptual', 0)
        if w: tok.perceptual = (PerceptualNet().requires_grad_(False), w)
        step(tok, (x, y))
        tok.perceptual = None
    # the generators, on token sequences of their tokenizers' shapes
    msvq = MultiScaleVQVAE(MSVQConfig(**{**vars(vq_cfg), 'patch_nums': scale_schedule(vq_cfg.latent_size)}))
    var = VAR(var_config(msvq, tiny=b.tiny_models, **b.model_kw('var')), msvq)
    L = sum(p * p for p in msvq.patch_nums)
    step(var, (torch.randint(msvq.cfg.vocab_size, (B, L), generator=g), y))
    vq = VQVAE(vq_cfg)
    side = vq_cfg.latent_size
    for preset in ('AR', 'MAR', 'SAR-TS'):
        fmt = FMT(fmt_config(preset, vq, tiny=b.tiny_models, **b.model_kw('fmt')), vq)
        step(fmt, (torch.randint(vq_cfg.vocab_size, (B, side * side), generator=g), y))


def _hashes(images: torch.Tensor) -> set:
    return {hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in images}


def test_validation_reference_shares_no_image_with_the_judge_or_the_test_split():
    data = as_dataset('fashion_mnist')
    n = classifier_train_size(data)
    judge = _hashes(data.train_images[:n])                     # what the judge trains on
    validation = _hashes(held_out_images(data)[0])            # the floor's images and the validation reference
    test = _hashes(data.test_images)
    assert len(validation) > 5000 and not validation & judge and not validation & test


@pytest.mark.parametrize('name', sorted(BUDGETS))
def test_no_stage_of_a_recipe_trains_on_the_validation_reference(name):
    "Every stage of the main job (judge, perceptual net, tokenizers, generators) trains on `train_split(data, _n_train(...))`."
    data = as_dataset('fashion_mnist')
    n = _n_train(BUDGETS[name], data)
    assert 0 < n <= classifier_train_size(data)
    trained = _hashes(train_split(data, n)[0])
    assert not trained & _hashes(held_out_images(data)[0]) and not trained & _hashes(data.test_images)
