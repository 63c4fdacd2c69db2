"""A tiny random-weight FLUX built with diffusers and transformers, saved in every format merchgen
reads: a diffusers folder (sharded transformer and T5, CLIP's tokenizer as vocab.json and
merges.txt only, as hub folders have it), the transformer in Black Forest Labs (BFL)
naming as safetensors, GGUF F32 and GGUF Q8_0, and the VAE as `ae.safetensors`. The BFL names come
from inverting diffusers' own conversions, and each inversion is checked by running diffusers'
converter on the result (`convert_flux_transformer_checkpoint_to_diffusers`,
`convert_ldm_vae_checkpoint`): it must give back the original tensors exactly.
"""

import inspect
import json
import math
import shutil
from pathlib import Path

import gguf
import numpy as np
import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
from diffusers.loaders import single_file_utils
from diffusers.loaders.single_file_utils import (
    convert_flux_transformer_checkpoint_to_diffusers,
    convert_ldm_vae_checkpoint,
)
from safetensors.torch import save_file
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    PreTrainedTokenizerFast,
    T5Config,
    T5EncoderModel,
)

# Sizes (diffusion.md section 3 and 9): head 32 = rope axes 4+14+14; every linear input a
# multiple of 32 so Q8_0 applies; VAE channels multiples of 32 with 4 levels.
HIDDEN, HEADS, AXES = 128, 4, (4, 14, 14)
TEXT_DIM = 32
WORDS = (
    "a an the and of with in on at to for from by is this it cat dog corgi astronaut portrait logo "
    "bold outlines pop art watercolor anime line flat vector vintage retro sticker metal abstract "
    "black white red blue green yellow orange purple gold bright dark soft clean simple detailed "
    "illustration painting drawing photo cute happy mountain sun moon star sky sea wave tree flower "
    "city night space rocket planet skull rose heart fire dragon tiger fox owl robot coffee cup"
).split()


def randomize(module, scale_1d=0.1):
    """Seeded random values for every parameter: norms around 1 (never 0), small biases,
    weights scaled by 1/sqrt(fan_in)."""
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if p.ndim == 1:
                if name.endswith("bias"):
                    p.copy_(0.02 * torch.randn_like(p))
                else:
                    p.copy_(1.0 + scale_1d * torch.randn_like(p))
            else:
                fan_in = math.prod(p.shape[1:])
                p.copy_(torch.randn_like(p) / math.sqrt(fan_in))
    return module


def tokenizer_json(vocab, post):
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
        "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": post, "decoder": None,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
    }


def t5_tokenizer():
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for w in sorted(set(WORDS)) + list(".,!?-"):
        vocab.setdefault(w, len(vocab))
    eos = {"id": "</s>", "type_id": 0}
    post = {
        "type": "TemplateProcessing",
        "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": eos}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": eos},
                 {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": eos}],
        "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}},
    }
    return tokenizer_json(vocab, post), len(vocab)


def bytes_to_unicode():
    """GPT-2's table of bytes to printable characters, which CLIP's byte-level BPE uses."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return dict(zip(bs, map(chr, cs)))


def write_clip_bpe(folder: Path):
    """CLIP's tokenizer files as hub FLUX folders ship them (`vocab.json`, `merges.txt`, no
    tokenizer.json): every byte with and without the `</w>` word end, merges spelling the known
    words, start and end tokens last (the end token has the highest id). Returns the vocab size."""
    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    merges = []
    for word in sorted(set(WORDS)):
        parts = list(word)
        parts[-1] += "</w>"
        current = parts[0]
        for part in parts[1:]:
            if f"{current} {part}" not in merges:
                merges.append(f"{current} {part}")
            current += part
            vocab.setdefault(current, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return len(vocab)


def fast_tokenizer(path, max_length, **special):
    return PreTrainedTokenizerFast(tokenizer_file=str(path), model_max_length=max_length, **special)


def build(work: Path, seed: int = 0):
    """Build the tiny pipeline, save it in every format, return (pipeline, paths)."""
    torch.manual_seed(seed)
    tok_dir = work / "tokenizers"
    tok_dir.mkdir(parents=True, exist_ok=True)
    t5_tok, t5_vocab = t5_tokenizer()
    (tok_dir / "t5.json").write_text(json.dumps(t5_tok))
    clip_vocab = write_clip_bpe(tok_dir / "clip-bpe")
    # transformers builds CLIPTokenizer from vocab.json + merges.txt, as for a hub folder.
    clip_tokenizer = CLIPTokenizer.from_pretrained(tok_dir / "clip-bpe", model_max_length=77)
    (tok_dir / "clip-transformers.json").write_text(clip_tokenizer.backend_tokenizer.to_str())

    transformer = randomize(FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=2, num_single_layers=2, attention_head_dim=HIDDEN // HEADS,
        num_attention_heads=HEADS, joint_attention_dim=TEXT_DIM, pooled_projection_dim=TEXT_DIM,
        guidance_embeds=False, axes_dims_rope=AXES))
    vae = randomize(AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[32, 64, 64, 64], layers_per_block=1,
        latent_channels=16, norm_num_groups=32, sample_size=64, scaling_factor=0.3611, shift_factor=0.1159,
        use_quant_conv=False, use_post_quant_conv=False))
    clip = randomize(CLIPTextModel(CLIPTextConfig(
        vocab_size=clip_vocab, hidden_size=TEXT_DIM, intermediate_size=2 * TEXT_DIM, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=TEXT_DIM,
        bos_token_id=clip_vocab - 2, eos_token_id=clip_vocab - 1, pad_token_id=clip_vocab - 1)))
    t5 = randomize(T5EncoderModel(T5Config(
        vocab_size=t5_vocab, d_model=TEXT_DIM, d_kv=8, d_ff=2 * TEXT_DIM, num_layers=2, num_heads=4,
        relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.0,
        layer_norm_epsilon=1e-6, feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=0)))
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False)
    pipe = FluxPipeline(
        scheduler=scheduler, vae=vae, text_encoder=clip, text_encoder_2=t5,
        tokenizer=clip_tokenizer,
        tokenizer_2=fast_tokenizer(tok_dir / "t5.json", 256, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"),
        transformer=transformer,
    ).to(torch.float32)
    paths = save_all(pipe, work, tok_dir)
    return pipe, paths


def save_all(pipe, work: Path, tok_dir: Path):
    folder = work / "diffusers"
    shutil.rmtree(folder, ignore_errors=True)
    pipe.save_pretrained(folder, safe_serialization=True)
    # Shards exercise merchgen's `*.safetensors.index.json` path for the transformer and T5.
    (folder / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    pipe.transformer.save_pretrained(folder / "transformer", max_shard_size="3MB")
    (folder / "text_encoder_2" / "model.safetensors").unlink()
    pipe.text_encoder_2.save_pretrained(folder / "text_encoder_2", max_shard_size="40KB")
    (folder / "tokenizer_2" / "tokenizer.json").write_text((tok_dir / "t5.json").read_text())
    # tokenizer/ as on the hub: vocab.json and merges.txt only, so merchgen builds CLIP's BPE
    # itself for the diffusers-folder runs (the manifests use transformers' tokenizer.json).
    (folder / "tokenizer" / "tokenizer.json").unlink(missing_ok=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(tok_dir / "clip-bpe" / name, folder / "tokenizer" / name)
    bfl_dir = work / "bfl"
    bfl_dir.mkdir(exist_ok=True)
    bfl = transformer_to_bfl(pipe.transformer)
    save_file(bfl, bfl_dir / "flux1-tiny.safetensors")
    ae = vae_to_bfl(pipe.vae)
    save_file(ae, bfl_dir / "ae.safetensors")
    write_gguf(bfl, bfl_dir / "flux1-tiny-f32.gguf", quantize=False)
    dequantized = write_gguf(bfl, bfl_dir / "flux1-tiny-q8_0.gguf", quantize=True)
    write_t5_gguf(pipe.text_encoder_2, bfl_dir / "t5-tiny-f32.gguf")
    return {"folder": folder, "bfl": bfl_dir, "q8_dequantized_bfl": dequantized}


def write_t5_gguf(t5, path: Path):
    """T5's encoder as a GGUF F32 in llama.cpp's tensor names (as city96's T5 GGUFs are), the names
    from the gguf package's own table for the T5 encoder, not from merchgen's."""
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.T5ENCODER, t5.config.num_layers)
    writer = gguf.GGUFWriter(str(path), "t5encoder")
    for name, tensor in sorted(t5.state_dict().items()):
        if name == "encoder.embed_tokens.weight":
            continue  # tied to `shared.weight`
        new = names.get_name(name, try_suffixes=(".weight",))
        assert new is not None, f"gguf has no llama.cpp name for T5 tensor {name}"
        writer.add_tensor(new, tensor.float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def transformer_to_bfl(transformer):
    """Invert `convert_flux_transformer_checkpoint_to_diffusers`, then check that diffusers'
    converter maps the result back to the same tensors."""
    sd = {k: v.detach().clone().contiguous() for k, v in transformer.state_dict().items()}
    out = {}
    pop = sd.pop

    def lin(bfl, parts, swap=False):
        for suffix in ("weight", "bias"):
            ts = [pop(f"{p}.{suffix}") for p in parts]
            t = torch.cat(ts, 0)
            if swap:
                shift_scale = t.chunk(2, 0)
                t = torch.cat([shift_scale[1], shift_scale[0]], 0)
            out[f"{bfl}.{suffix}"] = t.contiguous()

    lin("img_in", ["x_embedder"])
    lin("txt_in", ["context_embedder"])
    embedders = [("time_in", "timestep"), ("vector_in", "text")]
    if transformer.config.guidance_embeds:  # FLUX.1-dev-style
        embedders.append(("guidance_in", "guidance"))
    for bfl, d in embedders:
        lin(f"{bfl}.in_layer", [f"time_text_embed.{d}_embedder.linear_1"])
        lin(f"{bfl}.out_layer", [f"time_text_embed.{d}_embedder.linear_2"])
    lin("final_layer.linear", ["proj_out"])
    lin("final_layer.adaLN_modulation.1", ["norm_out.linear"], swap=True)
    for i in range(transformer.config.num_layers):
        b, d = f"double_blocks.{i}", f"transformer_blocks.{i}"
        lin(f"{b}.img_mod.lin", [f"{d}.norm1.linear"])
        lin(f"{b}.txt_mod.lin", [f"{d}.norm1_context.linear"])
        lin(f"{b}.img_attn.qkv", [f"{d}.attn.to_q", f"{d}.attn.to_k", f"{d}.attn.to_v"])
        lin(f"{b}.txt_attn.qkv", [f"{d}.attn.add_q_proj", f"{d}.attn.add_k_proj", f"{d}.attn.add_v_proj"])
        lin(f"{b}.img_attn.proj", [f"{d}.attn.to_out.0"])
        lin(f"{b}.txt_attn.proj", [f"{d}.attn.to_add_out"])
        lin(f"{b}.img_mlp.0", [f"{d}.ff.net.0.proj"])
        lin(f"{b}.img_mlp.2", [f"{d}.ff.net.2"])
        lin(f"{b}.txt_mlp.0", [f"{d}.ff_context.net.0.proj"])
        lin(f"{b}.txt_mlp.2", [f"{d}.ff_context.net.2"])
        for bfl, dn in [("img_attn.norm.query_norm", "norm_q"), ("img_attn.norm.key_norm", "norm_k"),
                        ("txt_attn.norm.query_norm", "norm_added_q"), ("txt_attn.norm.key_norm", "norm_added_k")]:
            out[f"{b}.{bfl}.scale"] = pop(f"{d}.attn.{dn}.weight")
    for i in range(transformer.config.num_single_layers):
        b, d = f"single_blocks.{i}", f"single_transformer_blocks.{i}"
        lin(f"{b}.linear1", [f"{d}.attn.to_q", f"{d}.attn.to_k", f"{d}.attn.to_v", f"{d}.proj_mlp"])
        lin(f"{b}.linear2", [f"{d}.proj_out"])
        lin(f"{b}.modulation.lin", [f"{d}.norm.linear"])
        out[f"{b}.norm.query_norm.scale"] = pop(f"{d}.attn.norm_q.weight")
        out[f"{b}.norm.key_norm.scale"] = pop(f"{d}.attn.norm_k.weight")
    assert not sd, f"unmapped diffusers tensors: {sorted(sd)[:5]}"
    check_same(flux_converter(HIDDEN)(dict(out)), transformer.state_dict(), "transformer")
    return out


def flux_converter(inner_dim):
    """diffusers' `convert_flux_transformer_checkpoint_to_diffusers` with its hard-coded width
    (`inner_dim = 3072`, FLUX.1's) set to the tiny model's; nothing else changed."""
    source = inspect.getsource(convert_flux_transformer_checkpoint_to_diffusers)
    assert source.count("inner_dim = 3072") == 1, "diffusers' converter changed; update flux_converter"
    namespace = dict(vars(single_file_utils))
    exec(source.replace("inner_dim = 3072", f"inner_dim = {inner_dim}"), namespace)
    return namespace["convert_flux_transformer_checkpoint_to_diffusers"]


def vae_to_bfl(vae):
    """Invert `convert_ldm_vae_checkpoint` (up blocks reversed, attention as 1x1 convolutions),
    checked by running diffusers' converter on the result."""
    sd = {k: v.detach().clone().contiguous() for k, v in vae.state_dict().items()}
    levels = len(vae.config.block_out_channels)
    out = {}

    def rename(name):
        n = name
        for side in ("encoder", "decoder"):
            n = n.replace(f"{side}.mid_block.resnets.0.", f"{side}.mid.block_1.")
            n = n.replace(f"{side}.mid_block.resnets.1.", f"{side}.mid.block_2.")
            n = n.replace(f"{side}.mid_block.attentions.0.group_norm.", f"{side}.mid.attn_1.norm.")
            for d, b in [("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]:
                n = n.replace(f"{side}.mid_block.attentions.0.{d}.", f"{side}.mid.attn_1.{b}.")
            n = n.replace(f"{side}.conv_norm_out.", f"{side}.norm_out.")
        n = n.replace(".conv_shortcut.", ".nin_shortcut.")
        if n.startswith("encoder.down_blocks."):
            i, rest = n[len("encoder.down_blocks."):].split(".", 1)
            rest = rest.replace("resnets.", "block.").replace("downsamplers.0.", "downsample.")
            n = f"encoder.down.{i}.{rest}"
        if n.startswith("decoder.up_blocks."):
            i, rest = n[len("decoder.up_blocks."):].split(".", 1)
            rest = rest.replace("resnets.", "block.").replace("upsamplers.0.", "upsample.")
            n = f"decoder.up.{levels - 1 - int(i)}.{rest}"
        return n

    for name, t in sd.items():
        b = rename(name)
        if ".mid.attn_1." in b and b.endswith(".weight") and t.ndim == 2:
            t = t[:, :, None, None]
        out[b] = t.contiguous()
    check_same(convert_ldm_vae_checkpoint(dict(out), dict(vae.config)), vae.state_dict(), "VAE")
    return out


def check_same(converted, original, what):
    converted = {k: v for k, v in converted.items()}
    assert set(converted) == set(original), (what, sorted(set(converted) ^ set(original))[:6])
    for k, v in original.items():
        c = converted[k].reshape(v.shape)
        assert torch.equal(c, v), f"{what}: {k} differs after diffusers' converter"


def write_gguf(bfl, path: Path, quantize: bool):
    """The BFL tensors as GGUF (F32, or Q8_0 where the inner dimension allows, as llama.cpp does);
    returns the tensors as merchgen will read them (dequantized)."""
    writer = gguf.GGUFWriter(str(path), "flux")
    seen = {}
    for name in sorted(bfl):
        arr = bfl[name].float().numpy()
        if quantize and arr.ndim >= 2 and arr.shape[-1] % 32 == 0:
            q = gguf.quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            seen[name] = torch.from_numpy(gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0).copy())
        else:
            writer.add_tensor(name, arr)
            seen[name] = torch.from_numpy(arr.copy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return seen
