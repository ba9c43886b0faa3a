"""aiter_mha.integrations.transformers on a CPU machine (skipped without torch and transformers).

The attention ops run on the CPU kernels of tests/torch_cpu_kernels.py (attention by the
textbook formulas), so what is checked is the integration itself: registration under
attn_implementation="aiter_mha", the layout changes, GQA, the causal and sliding-window
arguments, unpadding of padded batches (left and right padding, a KV cache during generation),
packed sequences, and that gradients reach the weights. The same with our kernels on the GPU:
tests/gpu/test_transformers_gpu.py."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the transformers tests need torch")
transformers = pytest.importorskip("transformers", reason="the transformers tests need transformers")

import torch_cpu_kernels  # noqa: E402,F401  (registers the CPU kernels)
import aiter_mha.integrations.transformers  # noqa: E402,F401  (registers attn_implementation="aiter_mha")


def _model(attn, arch="llama", seed=0, **cfg):
    torch.manual_seed(seed)
    common = dict(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256)
    common.update(cfg)
    if arch == "mistral":
        config = transformers.MistralConfig(**common)
        model = transformers.MistralForCausalLM(config)
    else:
        config = transformers.LlamaConfig(**common)
        model = transformers.LlamaForCausalLM(config)
    model.config._attn_implementation = attn  # same weights, attention chosen per run
    return model.to(torch.bfloat16).eval()


def _logits(model, attn, **inputs):
    model.config._attn_implementation = attn
    with torch.no_grad():
        return model(**inputs).logits.float()


def _close(a, b, tol=3e-2):
    err = (a - b).abs().max().item()
    assert err <= tol * max(1.0, b.abs().max().item()), err


def test_registered_and_matches_eager_attention():
    cfg = transformers.LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                   num_attention_heads=4, num_key_value_heads=2)
    built = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="aiter_mha")
    assert built.config._attn_implementation == "aiter_mha"
    model = _model("aiter_mha")
    ids = torch.randint(0, 97, (3, 41), generator=torch.Generator().manual_seed(1))
    _close(_logits(model, "aiter_mha", input_ids=ids), _logits(model, "eager", input_ids=ids))


def test_sliding_window_matches_eager_attention():
    model = _model("aiter_mha", arch="mistral", sliding_window=7)
    ids = torch.randint(0, 97, (2, 40), generator=torch.Generator().manual_seed(2))
    got, want = _logits(model, "aiter_mha", input_ids=ids), _logits(model, "eager", input_ids=ids)
    _close(got, want)
    full = _model("eager", arch="mistral", sliding_window=None)  # the window changes the result
    assert (_logits(full, "eager", input_ids=ids) - want).abs().max().item() > 0.05


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_matches_each_sequence_alone(side):
    model = _model("aiter_mha", seed=3)
    gen = torch.Generator().manual_seed(4)
    lengths = [23, 9, 30]
    seqs = [torch.randint(0, 97, (n,), generator=gen) for n in lengths]
    ids = torch.zeros(3, 30, dtype=torch.long)
    mask = torch.zeros(3, 30, dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(30 - len(s), 30) if side == "left" else slice(0, len(s))
        ids[i, sl], mask[i, sl] = s, 1
    if side == "left":  # positions count from each sequence's first token, as generate() does
        pos = (mask.cumsum(1) - 1).clamp(min=0)
    else:
        pos = torch.arange(30).expand(3, 30)
    got = _logits(model, "aiter_mha", input_ids=ids, attention_mask=mask, position_ids=pos)
    for i, s in enumerate(seqs):
        alone = _logits(model, "aiter_mha", input_ids=s[None])[0]
        sl = slice(30 - len(s), 30) if side == "left" else slice(0, len(s))
        _close(got[i, sl], alone)


def test_generate_with_left_padding_and_kv_cache_matches_eager():
    model = _model("aiter_mha", seed=5)
    ids = torch.randint(1, 97, (2, 12), generator=torch.Generator().manual_seed(6))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0  # the first prompt is 7 tokens, left-padded
    outs = {}
    for attn in ("aiter_mha", "eager"):
        model.config._attn_implementation = attn
        outs[attn] = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, do_sample=False,
                                    pad_token_id=0)
    assert torch.equal(outs["aiter_mha"], outs["eager"])


def test_packed_sequences_match_each_sequence_alone():
    """cu_seq_lens_q / cu_seq_lens_k with position_ids restarting per sequence (the format of
    DataCollatorWithFlattening) go to flash_attn_varlen_func."""
    model = _model("aiter_mha", seed=7)
    gen = torch.Generator().manual_seed(8)
    seqs = [torch.randint(0, 97, (n,), generator=gen) for n in (11, 4, 17)]
    ids = torch.cat(seqs)[None]
    pos = torch.cat([torch.arange(len(s)) for s in seqs])[None]
    cu = torch.tensor([0, 11, 15, 32])
    got = _logits(model, "aiter_mha", input_ids=ids, position_ids=pos, cu_seq_lens_q=cu, cu_seq_lens_k=cu,
                  max_length_q=17, max_length_k=17)[0]
    for s, start in zip(seqs, (0, 11, 15)):
        _close(got[start:start + len(s)], _logits(model, "aiter_mha", input_ids=s[None])[0])


def test_training_step_reaches_every_weight_and_lowers_the_loss():
    model = _model("aiter_mha", seed=9).train()
    ids = torch.randint(0, 97, (4, 33), generator=torch.Generator().manual_seed(10))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        losses.append(loss.item())
        attn = model.model.layers[0].self_attn
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in attn.parameters())
        opt.step()
    assert losses[-1] < losses[0], losses


def test_unsupported_features_are_refused_with_the_reason():
    model = _model("aiter_mha", attention_dropout=0.1).train()
    with pytest.raises(NotImplementedError, match="dropout"):
        model(input_ids=torch.zeros(1, 5, dtype=torch.long))
    model32 = _model("aiter_mha").float()
    with pytest.raises(ValueError, match="float16 or bfloat16"):
        model32(input_ids=torch.zeros(1, 5, dtype=torch.long))
