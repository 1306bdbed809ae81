"""Any-size and prompt-conditioned FMTs: one model at several grids, no leak and cached == plain at every grid and with
prompt prefixes, the null prompt as guidance's unconditional branch, clear errors for bad prompts, checkpoints."""
import pytest
import torch

from sar_ref.data import draw_shapes
from sar_ref.fmt import FMT, FMTConfig, generate, generate_steps
from sar_ref.partitions import make_partition
from sar_ref.prompts import (NULL, PAD, TEXT_ENCODERS, AnySizeConfig, AnySizeFMT, MultiSizeTokens, PromptFMT,
                             PromptFMTConfig, cache_gap, captions_of, encode_captions, generate_from_captions, is_held_out,
                             leak_gap, resized_table, shape_attributes, train_generator, with_pairs)
from sar_ref.training import load_model
from sar_ref.vqvae import VQVAE, VQVAEConfig

CAPTIONS = ['a small red star on navy, top left', 'a large blue ring on black, bottom right']


@pytest.fixture(scope='module')
def tokenizer():
    torch.manual_seed(0)
    return VQVAE(VQVAEConfig.for_images(32, 3, tiny=True)).eval()


@pytest.fixture(scope='module')
def any_size(tokenizer):
    torch.manual_seed(1)
    return AnySizeFMT(AnySizeConfig.tiny(vocab_size=tokenizer.cfg.vocab_size, enc_depth=2, dec_depth=2), tokenizer).eval()


@pytest.fixture(scope='module', params=TEXT_ENCODERS)
def prompted(tokenizer, request):
    torch.manual_seed(2)
    cfg = PromptFMTConfig.tiny(vocab_size=tokenizer.cfg.vocab_size, text_encoder=request.param)
    return PromptFMT(cfg, tokenizer).eval()


def test_attributes_replay_draw_shapes():
    attrs = shape_attributes(300, seed=5)
    assert torch.equal(attrs['shape'], draw_shapes(300, 24, seed=5)[1])
    assert captions_of(attrs)[0].startswith('a ') and ' on ' in captions_of(attrs)[0]
    assert is_held_out(with_pairs(attrs)).all()


def test_bad_prompts_name_the_argument_value_and_expectation():
    with pytest.raises(ValueError, match=r"captions\[0\]='a small mauve star': unknown word 'mauve'; expected words of"):
        encode_captions(['a small mauve star'])
    with pytest.raises(ValueError, match=r"9 words; expected at most max_words=8"):
        encode_captions(['a small red star on navy top left now'])
    with pytest.raises(ValueError, match=r"captions\[1\]='': empty; expected a caption such as"):
        encode_captions(['a red star', ''], allow_empty=False)
    with pytest.raises(ValueError, match='captions: empty list'):
        encode_captions([])
    with pytest.raises(TypeError, match='captions: expected a list of strings'):
        encode_captions('a red star')
    assert encode_captions([''])[0].tolist() == [NULL] + [PAD] * 7


def test_one_model_runs_at_two_grids(any_size):
    small, large = any_size.at_size(6), any_size.at_size(10)
    assert all(a is b for a, b in zip(small.parameters(), large.parameters()))
    assert any_size.cfg.h == 8 and (small.cfg.h, large.cfg.h) == (6, 10)
    tokens, images = generate(small, torch.arange(2))
    assert tokens.shape == (2, 6, 6) and images.shape == (2, 3, 24, 24)
    tokens, images = generate(large, torch.arange(2))
    assert tokens.shape == (2, 10, 10) and images.shape == (2, 3, 40, 40)
    with pytest.raises(ValueError, match='h=0'):
        any_size.at_size(0)


@pytest.mark.parametrize('side', [6, 8, 10])
def test_no_leak_and_cached_equals_plain_at_every_grid(any_size, tokenizer, side):
    g = torch.Generator().manual_seed(side)
    view = any_size.at_size(side)
    part = make_partition('random', 'random:7', side, side, batch=3, generator=g)
    tokens = torch.randint(0, view.cfg.vocab_size, (3, side * side), generator=g)
    assert leak_gap(view, tokens, torch.tensor([0, 3, 10]), part, g) <= 1e-5
    assert cache_gap(view, torch.tensor([1, 2, 3]), seed=side, cfg=1.5, top_k=5) <= 1e-5
    baseline = FMT(FMTConfig.tiny(vocab_size=tokenizer.cfg.vocab_size), tokenizer).eval()
    assert cache_gap(resized_table(baseline, side), torch.tensor([0, 9]), seed=side) <= 1e-5


@pytest.mark.parametrize('side', [6, 10])
def test_prompt_prefix_never_leaks_and_caches_exactly(prompted, side):
    g = torch.Generator().manual_seed(side)
    view = prompted.at_size(side).with_prompts(encode_captions(CAPTIONS))
    part = make_partition('random', 'random:5', side, side, batch=3, generator=g)
    tokens = torch.randint(0, view.cfg.vocab_size, (3, side * side), generator=g)
    assert leak_gap(view, tokens, torch.tensor([0, 1, 2]), part, g) <= 1e-5
    assert cache_gap(view, torch.tensor([0, 1]), seed=side, cfg=2.0) <= 1e-5


def test_the_prompt_moves_the_logits_and_the_null_prompt_is_guidance_s_other_half(prompted):
    g = torch.Generator().manual_seed(0)
    words = encode_captions(CAPTIONS)
    part = make_partition('random', 'cosine:6', 8, 8, batch=2, generator=g)
    tokens = torch.randint(0, prompted.cfg.vocab_size, (2, 64), generator=g)
    with torch.no_grad():
        out = prompted.with_prompts(words)(tokens, torch.arange(2), part)
        assert (out - prompted.with_prompts(words.flip(0))(tokens, torch.arange(2), part)).abs().max() > 1e-4
        null_id = prompted.with_prompts(words)(tokens, torch.full((2,), 2), part)
        empty = prompted.with_prompts(encode_captions(['', '']))(tokens, torch.arange(2), part)
    assert torch.allclose(null_id, empty, atol=1e-6)
    t = 2.0
    first = lambda v, cfg: next(generate_steps(v, torch.arange(2), cfg=cfg, partition=part))[3]
    guided, cond = first(prompted.with_prompts(words), t), first(prompted.with_prompts(words), 0.0)
    uncond = first(prompted.with_prompts(encode_captions(['', ''])), 0.0)
    assert torch.allclose(guided, (1 + t) * cond - t * uncond, atol=1e-4)


def test_prompt_model_errors(prompted):
    with pytest.raises(ValueError, match='a PromptFMT is conditioned on captions'):
        generate(prompted, torch.tensor([0]))
    with pytest.raises(ValueError, match=r'words: expected a \(B, 8\) long tensor'):
        prompted.with_prompts(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown word 'cat'"):
        generate_from_captions(prompted, ['a red cat'])
    with pytest.raises(ValueError, match='text_encoder'):
        PromptFMTConfig(text_encoder='lstm')


def test_training_on_two_sizes_and_prompts_then_reload(tokenizer, tmp_path):
    g = torch.Generator().manual_seed(0)
    V = tokenizer.cfg.vocab_size
    data = MultiSizeTokens({6: torch.randint(0, V, (32, 36), generator=g), 8: torch.randint(0, V, (32, 64), generator=g)},
                           torch.randint(0, 10, (32,), generator=g))
    model = AnySizeFMT(AnySizeConfig.tiny(vocab_size=V), tokenizer)
    path = train_generator(model, data.loader(8), tmp_path / 'any.pt', steps=4)
    assert isinstance(load_model(path, 'fmt_any_size'), AnySizeFMT)
    words = encode_captions(captions_of(shape_attributes(16, seed=1)))
    pm = PromptFMT(PromptFMTConfig.tiny(vocab_size=V), tokenizer)
    path = train_generator(pm, (torch.randint(0, V, (16, 64), generator=g), words), tmp_path / 'prompt.pt', steps=3, batch_size=8)
    back = load_model(path, 'fmt_prompt')
    part = make_partition('raster', 'cosine:4', 8, 8)
    tokens = torch.randint(0, V, (2, 64), generator=g)
    with torch.no_grad():
        a = back.with_prompts(words[:2])(tokens, torch.arange(2), part)
        b = load_model(path, 'fmt_prompt').with_prompts(words[:2])(tokens, torch.arange(2), part)
    assert torch.equal(a, b) and generate_from_captions(back, CAPTIONS, side=6)[1].shape == (2, 3, 24, 24)
