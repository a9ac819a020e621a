"""Chat prompt formats done here (Llama-3.1's, Gemma's), so no tokenizer download is needed for a
Triton model that takes raw text; and the token bound used where no tokenizer is at hand."""

from __future__ import annotations

from collections.abc import Callable

BOS = "<|begin_of_text|>"
EOT = "<|eot_id|>"
STOP_WORDS = [EOT, "<|eom_id|>", "<|end_of_text|>", "<end_of_turn>"]


def _clean(content: object) -> str:
    # the special tokens are ours alone: a source's metadata cannot open a new turn
    return str(content).replace("<|", "< |").replace("<start_of_turn>", "").replace("<end_of_turn>", "").strip()


def llama3_prompt(messages: list[dict[str, str]]) -> str:
    """The Llama-3.1 instruct template for ``[{"role": ..., "content": ...}]``, ending with the
    assistant header so the model writes the reply."""
    out = [BOS]
    for m in messages:
        role = m["role"]
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"unknown chat role {role!r}")
        out.append(f"<|start_header_id|>{role}<|end_header_id|>\n\n{_clean(m['content'])}{EOT}")
    out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(out)


def gemma_prompt(messages: list[dict[str, str]]) -> str:
    """Gemma's turns (no system role: the system text opens the first user turn), ending with the
    model's turn. The tokenizer adds <bos>."""
    out, system = [], ""
    for m in messages:
        role = m["role"]
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"unknown chat role {role!r}")
        if role == "system":
            system += _clean(m["content"]) + "\n\n"
            continue
        text = system + _clean(m["content"]) if role == "user" else _clean(m["content"])
        system = "" if role == "user" else system
        out.append(f"<start_of_turn>{'model' if role == 'assistant' else 'user'}\n{text}<end_of_turn>\n")
    out.append("<start_of_turn>model\n")
    return "".join(out)


CHAT_FORMATS: dict[str, Callable[[list[dict[str, str]]], str]] = {"llama3": llama3_prompt, "gemma": gemma_prompt}


def token_upper_bound(text: str) -> int:
    """At most this many tokens: every token of a byte-level BPE or byte-fallback SentencePiece
    vocabulary spans at least one UTF-8 byte (+2 for BOS/EOS)."""
    return len(text.encode()) + 2
