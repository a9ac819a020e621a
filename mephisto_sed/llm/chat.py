"""Llama-3.1 chat formatting done here, so no tokenizer download is needed."""

from __future__ import annotations

BOS = "<|begin_of_text|>"
EOT = "<|eot_id|>"
STOP_WORDS = [EOT, "<|eom_id|>", "<|end_of_text|>"]


def llama3_prompt(messages: list[dict[str, str]]) -> str:
    """The Llama-3.1 instruct template for ``[{"role": ..., "content": ...}]``, ending with the
    assistant header so the model writes the reply."""
    out = [BOS]
    for m in messages:
        role = m["role"]
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"unknown chat role {role!r}")
        # the special tokens are ours alone: a source's metadata cannot open a new turn
        content = str(m["content"]).replace("<|", "< |")
        out.append(f"<|start_header_id|>{role}<|end_header_id|>\n\n{content.strip()}{EOT}")
    out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(out)


def estimate_tokens(text: str) -> int:
    """~4 characters per token for English and JSON with Llama-3's tokenizer (an estimate)."""
    return max(1, (len(text) + 3) // 4)
