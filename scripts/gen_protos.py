"""Regenerate the committed Python stubs from protos/ (grpcio-tools, pinned in the dev extra)."""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTOS = ROOT / "protos"


def generate(out: Path = ROOT) -> list[Path]:
    files = sorted(PROTOS.rglob("*.proto"))
    args = ["protoc", f"-I{PROTOS}", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}"]
    if protoc.main(args + [str(f) for f in files]) != 0:
        raise SystemExit("protoc failed")
    return [
        out / f.relative_to(PROTOS).with_name(f.stem + s)
        for f in files
        for s in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
    ]


if __name__ == "__main__":
    for p in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT):
        print(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
