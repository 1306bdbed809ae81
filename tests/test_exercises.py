"The exercise checkers accept the library's own implementations and reject a typical wrong answer each."
import math

import pytest
import torch
import torch.nn.functional as F

from sar_ref import exercises
from sar_ref.data import to_model_range
from sar_ref.evaluation import frechet_from_stats
from sar_ref.exercises import CHECKERS, ExerciseError
from sar_ref.partitions import cosine_intervals, equal_intervals, set_groups, set_masks
from sar_ref.training import TrainConfig, ema_update, lr_factor
from sar_ref.var import KVCache, block_causal_mask, guidance_scale, guide
from sar_ref.vqvae import nearest_code


def _cached(attn, chunks):
    cache = KVCache(sum(c.shape[1] for c in chunks))
    return [attn(x, cache=cache) for x in chunks]


def _next_set_loss(model, tokens, labels, partition):
    start = partition.offsets[partition.n_context]
    logits = model(tokens, labels, partition)[:, start:]
    return F.cross_entropy(logits.flatten(0, 1), partition.rearrange(tokens)[:, start:].flatten())


def _entropy(logits):
    return torch.special.entr(logits.softmax(-1)).sum(-1)


REFERENCES = {
    'check_to_model_range': to_model_range,
    'check_lr_factor': lr_factor,
    'check_ema_update': ema_update,
    'check_nearest_code': nearest_code,
    'check_straight_through': lambda z, c: z + (c - z).detach(),
    'check_residual_tokens': lambda model, f: model.quantize(f)[1],
    'check_block_causal_mask': block_causal_mask,
    'check_guidance': lambda c, u, cfg, p: guide(torch.cat([c, u]), guidance_scale(cfg, 'linear', p)),
    'check_entropy': _entropy,
    'check_cosine_intervals': cosine_intervals,
    'check_set_masks': set_masks,
    'check_cross_mask': lambda intervals: set_masks(intervals)[2],
    'check_next_set_loss': _next_set_loss,
    'check_cached_attention': _cached,
    'check_frechet': frechet_from_stats,
}


@torch.no_grad()
def _ema_swapped(ema, model, decay):
    for e, p in zip(ema.state_dict().values(), model.state_dict().values()):
        if e.is_floating_point(): e.lerp_(p, decay)
        else: e.copy_(p)


def _leaky_cross(intervals):
    g, h = set_groups(intervals)
    return h[None, :] <= g[:, None]


WRONG = {   # checker -> (a typical wrong answer, text its message must contain)
    'check_to_model_range': (lambda x: F.pad(x.float().div(255).unsqueeze(1), (2, 2, 2, 2)), 'all-zero image'),
    'check_lr_factor': (lambda step, cfg: step / cfg.warmup_steps if step < cfg.warmup_steps else lr_factor(step, cfg), 'step=0'),
    'check_ema_update': (_ema_swapped, 'decay=0.9'),
    'check_nearest_code': (lambda z, c: (z @ c.T).argmax(1), 'codebook of shape'),
    'check_straight_through': (lambda z, c: z + (c - z), 'z.grad'),
    'check_residual_tokens': (lambda model, f: [model.quantizer.lookup(F.interpolate(f, size=(p, p), mode='area'))
                                                for p in model.patch_nums], 'scale 1'),
    'check_block_causal_mask': (lambda pn: torch.ones(sum(p * p for p in pn), sum(p * p for p in pn), dtype=torch.bool).tril(),
                                'patch_nums=(1, 2)'),
    'check_guidance': (lambda c, u, cfg, p: (1 + cfg) * c - cfg * u, 'progress=0.0'),
    'check_entropy': (lambda logits: -(logits.softmax(-1) * logits.softmax(-1).log()).sum(-1), 'top_k=3'),
    'check_cosine_intervals': (equal_intervals, 'n=64, k=8'),
    'check_set_masks': (lambda iv: (*set_masks(iv)[:2], _leaky_cross(iv)), 'm_dc'),
    'check_cross_mask': (_leaky_cross, 'intervals=[1, 2, 2, 3]'),
    'check_next_set_loss': (lambda model, tokens, labels, part: F.cross_entropy(model(tokens, labels, part).flatten(0, 1),
                                                                                tokens.flatten()), "order 'random'"),
    'check_cached_attention': (lambda attn, chunks: [attn(x) for x in chunks], 'output of chunk 1'),
    'check_frechet': (lambda m1, s1, m2, s2: ((m1 - m2).square().sum() + s1.trace() + s2.trace()
                                              - 2 * (s1 * s2).sqrt().trace()).item(), 'full covariances'),
}


def test_every_checker_is_covered():
    assert sorted(REFERENCES) == sorted(CHECKERS) == sorted(WRONG)


@pytest.mark.parametrize('name', CHECKERS)
def test_accepts_reference(name):
    assert getattr(exercises, name)(REFERENCES[name]) >= 1


@pytest.mark.parametrize('name', CHECKERS)
def test_rejects_wrong_answer(name):
    wrong, contains = WRONG[name]
    with pytest.raises(ExerciseError, match='expected') as err:
        getattr(exercises, name)(wrong)
    assert contains in str(err.value) and name in str(err.value)


@pytest.mark.parametrize('name', CHECKERS)
def test_bad_input_is_a_type_error(name):
    with pytest.raises(TypeError, match='fn=.*expected a function'):
        getattr(exercises, name)(42)


def test_lr_message_names_the_case():
    with pytest.raises(ExerciseError) as err:
        exercises.check_lr_factor(lambda step, cfg: 0.5)
    assert 'step=0, TrainConfig(steps=100, warmup_steps=10' in str(err.value) and 'got:      0.5' in str(err.value)
    assert math.isclose(lr_factor(0, TrainConfig(steps=100, warmup_steps=10, progress=False)), 0.1)
