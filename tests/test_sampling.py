"""The one-path property tests: cached == uncached for both samplers over many random partitions, no leakage, no
validation inside a training step, and clear errors for checkpoints of an older layout."""
import pytest
import torch

import sar_ref.msvq
import sar_ref.partitions
from sar_ref.fmt import FMT, FMTConfig, generate as fmt_generate, generate_steps as fmt_steps
from sar_ref.msvq import MSVQConfig, MultiScaleVQVAE
from sar_ref.partitions import SetPartition, random_orders
from sar_ref.training import CheckpointError, atomic_save, fit, TrainConfig, load_checkpoint, load_model, save_model
from sar_ref.var import ModelCache, VAR, VARConfig, generate as var_generate, generate_steps as var_steps


def randomize(model, std, seed=0):
    "Redraw every transformer parameter so that every path moves the logits."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith('tokenizer.'): p.copy_(torch.randn(p.shape, generator=g) * std)
    return model.eval()


@pytest.fixture(scope='module')
def var_model():
    torch.manual_seed(0)
    tok = MultiScaleVQVAE(MSVQConfig.tiny()).eval()
    return randomize(VAR(VARConfig.tiny(vocab_size=tok.cfg.vocab_size, z_dim=tok.cfg.z_dim), tok), 0.1)


@pytest.fixture(scope='module')
def fmt_model():
    torch.manual_seed(0)
    return randomize(FMT(FMTConfig.tiny('SAR-TS', vocab_size=32, enc_depth=2, dec_depth=2)), 0.2)


def sampling_kw(g):
    "Random guidance, schedule, top-k, top-p and temperature."
    cfg, schedule = [(0.0, 'linear'), (2.0, 'linear'), (1.5, 'constant')][int(torch.randint(0, 3, (), generator=g))]
    return dict(cfg=cfg, cfg_schedule=schedule, top_k=int(torch.randint(0, 20, (), generator=g)),
                top_p=float(torch.empty(()).uniform_(0.5, 1.0, generator=g)),
                temperature=float(torch.empty(()).uniform_(0.5, 1.5, generator=g)))


def random_partition(g, B=3):
    "A random order per sample, random intervals, and sometimes a given context set."
    n_given = int(torch.randint(1, 33, (), generator=g)) if torch.rand((), generator=g) < 0.5 else 0
    K = int(torch.randint(1, 13, (), generator=g))
    cuts = (torch.randperm(63 - n_given, generator=g)[:K - 1] + 1).sort().values.tolist()
    sizes = [b - a for a, b in zip([0] + cuts, cuts + [64 - n_given])]
    return SetPartition(random_orders(B, 8, 8, g), ([n_given] if n_given else []) + sizes, n_context=int(n_given > 0))


def run_steps(sampler, model, labels, seed, **kw):
    return list(sampler(model, labels, generator=torch.Generator().manual_seed(seed), **kw))


@pytest.mark.parametrize('seed', range(12))
def test_fmt_cached_equals_plain(fmt_model, seed):
    g = torch.Generator().manual_seed(100 + seed)
    part, kw = random_partition(g), sampling_kw(g)
    labels, given = torch.tensor([0, 5, 10]), torch.randint(0, 32, (3, 8, 8), generator=g)
    cached = run_steps(fmt_steps, fmt_model, labels, seed, partition=part, tokens=given, kv_cache=True, **kw)
    plain = run_steps(fmt_steps, fmt_model, labels, seed, partition=part, tokens=given, kv_cache=False, **kw)
    assert len(cached) == len(plain) == part.k
    for (k, c1, kn1, l1), (_, c2, kn2, l2) in zip(cached, plain):
        assert torch.equal(c1, c2) and torch.equal(kn1, kn2)
        assert (l1 is None) == (l2 is None) == (k <= part.n_context)
        if l1 is not None: assert (l1 - l2).abs().max() <= 1e-5


@pytest.mark.parametrize('seed', range(6))
def test_var_cached_equals_plain(var_model, seed):
    g = torch.Generator().manual_seed(200 + seed)
    kw, labels = sampling_kw(g), torch.randint(0, 11, (3,), generator=g)
    cached = run_steps(var_steps, var_model, labels, seed, kv_cache=True, **kw)
    plain = run_steps(var_steps, var_model, labels, seed, kv_cache=False, **kw)
    for (_, t1, l1, f1), (_, t2, l2, f2) in zip(cached, plain):
        assert torch.equal(t1, t2) and (l1 - l2).abs().max() <= 1e-5 and (f1 - f2).abs().max() <= 1e-5


class NoisyCache(ModelCache):
    "Adds noise to the first group's first layer keys whenever the sampler asks how much is cached after step 1."
    @property
    def length(self):
        n = super().length
        first = next(iter(self.groups.values()))[0]
        if n and first.k is not None: first.k[:, :, :1] += 0.5
        return n


def test_corrupted_cache_is_caught(var_model):
    "The equality test has teeth: a cache whose keys are disturbed gives other logits."
    labels = torch.tensor([1, 2])
    plain = run_steps(var_steps, var_model, labels, 0, cfg=0.0, kv_cache=False)
    noisy = run_steps(var_steps, var_model, labels, 0, cfg=0.0, kv_cache=NoisyCache(**var_model.make_cache().groups))
    assert max((a[2] - b[2]).abs().max().item() for a, b in zip(plain, noisy)) > 1e-3


@pytest.mark.parametrize('seed', range(4))
def test_fmt_never_leaks(fmt_model, seed):
    "Logits of sets <= k do not move when the tokens of sets >= k change; later ones do."
    g = torch.Generator().manual_seed(300 + seed)
    part = random_partition(g, B=4)
    part = SetPartition(part.order, part.intervals)                     # every set predicted
    tokens, labels = torch.randint(0, 32, (4, 64), generator=g), torch.randint(0, 10, (4,), generator=g)
    with torch.no_grad():
        base = fmt_model(tokens, labels, part)
        for k in range(1, part.k + 1):
            later = part.order[:, part.offsets[k - 1]:]
            changed = tokens.scatter(1, later, torch.randint(0, 32, later.shape, generator=g))
            out = fmt_model(changed, labels, part)
            assert (out[:, :part.offsets[k]] - base[:, :part.offsets[k]]).abs().max() <= 1e-5
            if k < part.k - 1: assert (out[:, part.offsets[k + 1]:] - base[:, part.offsets[k + 1]:]).abs().max() > 1e-4


def test_training_step_runs_no_validator(var_model, fmt_model, monkeypatch):
    "compute_loss of both models never calls the validators that read tensor values (device syncs on a GPU)."
    def forbidden(*a, **k): raise AssertionError('a validator ran inside a training step')
    for mod, name in ((sar_ref.partitions, 'check_order'), (sar_ref.partitions, 'check_intervals'),
                      (sar_ref.msvq, 'check_tokens')):
        monkeypatch.setattr(mod, name, forbidden)
    monkeypatch.setattr(MultiScaleVQVAE, 'check_token_list', forbidden)
    tok = var_model.tokenizer
    var_tokens = torch.cat([torch.randint(0, tok.cfg.vocab_size, (4, p * p)) for p in tok.patch_nums], 1)
    for model, batch in ((var_model, (var_tokens, torch.randint(0, 10, (4,)))),
                         (fmt_model, (torch.randint(0, 32, (4, 64)), torch.randint(0, 10, (4,))))):
        model.train()
        loss, _ = model.compute_loss(batch)
        loss.backward()
        model.eval()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_training_step_has_no_device_sync(var_model, fmt_model):
    "On a GPU, a training step of either model raises under torch.cuda.set_sync_debug_mode('error')."
    for model, make in ((var_model, lambda: torch.cat([torch.randint(0, var_model.cfg.vocab_size, (4, p * p)) for p in var_model.cfg.patch_nums], 1)),
                        (fmt_model, lambda: torch.randint(0, 32, (4, 64)))):
        m = model.cuda().train()
        batch = (make().cuda(), torch.randint(0, 10, (4,)).cuda())
        m.compute_loss(batch)                                             # warm-up (lazy init may sync)
        torch.cuda.set_sync_debug_mode('error')
        try: m.compute_loss(batch)[0].backward()
        finally: torch.cuda.set_sync_debug_mode(0)
        model.cpu().eval()


def test_both_samplers_return_tokens_and_images(var_model):
    tok = var_model.tokenizer
    from sar_ref.vqvae import VQVAE, VQVAEConfig
    vq = VQVAE(VQVAEConfig.tiny()).eval()
    fmt = FMT(FMTConfig.tiny(vocab_size=vq.cfg.vocab_size, h=vq.cfg.latent_size, w=vq.cfg.latent_size), vq)
    for model, gen in ((var_model, var_generate), (fmt, fmt_generate)):
        tokens, images = gen(model, torch.tensor([0, 1]))
        assert images.shape == (2, 1, 32, 32) and images.min() >= -1 and images.max() <= 1


def test_checkpoints_carry_the_tokenizer_and_old_ones_fail_clearly(tmp_path):
    from sar_ref.vqvae import VQVAE, VQVAEConfig
    vq = VQVAE(VQVAEConfig.tiny()).eval()
    fmt = FMT(FMTConfig.tiny(vocab_size=vq.cfg.vocab_size, h=vq.cfg.latent_size, w=vq.cfg.latent_size), vq)
    path = save_model(tmp_path / 'fmt.pt', fmt, ema=fmt)
    loaded = load_model(path)
    g = lambda: torch.Generator().manual_seed(0)
    assert torch.equal(fmt_generate(loaded, torch.tensor([3]), generator=g())[1], fmt_generate(fmt, torch.tensor([3]), generator=g())[1])
    old = load_checkpoint(path)
    old.pop('version'); old['config']['dim'] = old['config'].pop('width')   # what a checkpoint of the previous layout holds
    atomic_save(old, tmp_path / 'old.pt')
    with pytest.raises(ValueError, match=r"layout version 1.*train it again \(sar_ref_train_fmt, or sar_ref_demo with a new --out folder\)"):
        load_model(tmp_path / 'old.pt')


# bf16 and compiled steps: selected by their flags only; compiled == eager tokens in fp32.

def fmt_few_sets(model, labels, seed, **kw):
    return fmt_generate(model, labels, generator=torch.Generator().manual_seed(seed), intervals='cosine:4', **kw)[0]


def test_compiled_step_is_selected_only_by_its_flag(var_model, fmt_model, monkeypatch):
    def refuse(*a, **k): raise AssertionError('torch.compile called without compile=')
    monkeypatch.setattr(torch, 'compile', refuse)
    labels = torch.tensor([0, 3, 10])
    var_generate(var_model, labels, generator=torch.Generator().manual_seed(0))
    fmt_few_sets(fmt_model, labels, 0)
    with pytest.raises(AssertionError, match='without compile'): fmt_few_sets(fmt_model, labels, 0, compile=True)


def test_compiled_step_draws_the_eager_tokens(var_model, fmt_model):
    "A compiled cached step (aot_eager: the graph capture without code generation, fast on a CPU) draws the same tokens."
    import sar_ref.var
    options = {'backend': 'aot_eager'}
    labels = torch.tensor([1, 4, 10])
    for seed in range(2):
        eager = var_generate(var_model, labels, generator=torch.Generator().manual_seed(seed))[0]
        compiled = var_generate(var_model, labels, generator=torch.Generator().manual_seed(seed), compile=options)[0]
        assert all(torch.equal(a, b) for a, b in zip(eager, compiled))
        assert torch.equal(fmt_few_sets(fmt_model, labels, seed), fmt_few_sets(fmt_model, labels, seed, compile=options))
    assert {fn.__name__ for fn, _ in sar_ref.var.COMPILED_STEPS} >= {'var_forward', 'set_logits'}


def test_bf16_sampling_keeps_the_cache_in_bf16_and_the_guidance_in_fp32(var_model, fmt_model):
    labels = torch.tensor([2, 5])
    cache = var_model.make_cache()
    steps = run_steps(var_steps, var_model, labels, 0, precision='bf16', kv_cache=cache, cfg=1.5)
    assert all(logits.dtype == torch.float32 for _, _, logits, _ in steps)     # guide() and softmax in fp32
    assert {c.k.dtype for c in cache['blocks']} == {torch.bfloat16}
    fp32 = run_steps(var_steps, var_model, labels, 0, kv_cache=cache, cfg=1.5)     # the same cache object, back in fp32
    assert {c.k.dtype for c in cache['blocks']} == {torch.float32}
    agree = torch.cat([(a[1] == b[1]).flatten() for a, b in zip(steps, fp32)]).float().mean()
    assert agree > 0.5                                                             # bf16 logits: mostly the same draws
    tokens = fmt_few_sets(fmt_model, labels, 0, precision='bf16')
    assert tokens.shape == (2, 8, 8) and tokens.dtype == torch.long


@pytest.mark.parametrize('kw, err, match', [
    (dict(precision='fp64'), ValueError, "precision='fp64'"),
    (dict(precision='auto'), ValueError, "precision='auto'"),
    (dict(compile='yes'), TypeError, "compile='yes'"),
    (dict(compile={1: 2}), TypeError, 'compile='),
])
def test_bad_speed_arguments_are_named(var_model, fmt_model, kw, err, match):
    labels = torch.tensor([0])
    with pytest.raises(err, match=match): var_generate(var_model, labels, **kw)
    with pytest.raises(err, match=match): fmt_generate(fmt_model, labels, **kw)


def test_paper_presets_match_var_sizes():
    "FMTConfig.paper(preset, d) is within 5% of VAR-d's parameters at ImageNet-256 scale (built on the meta device)."
    with torch.device('meta'):
        for depth in (16, 20, 24, 30):
            fmt, var = FMT(FMTConfig.paper('SAR-TS', depth)), VAR(VARConfig.official(depth))
            n_fmt, n_var = (sum(p.numel() for p in m.parameters()) for m in (fmt, var))
            assert abs(n_fmt / n_var - 1) < 0.05, (depth, n_fmt, n_var)
            assert (fmt.cfg.h, fmt.cfg.w, fmt.cfg.vocab_size, fmt.cfg.n_classes) == (16, 16, 4096, 1000)
    assert FMTConfig.paper('AR').sample_intervals == 'ar'
