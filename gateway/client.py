"""A client of the gateway: submit a catalogue, follow its jobs, write the same outputs as
`mephisto-sed fit` (results.csv/.fits, traces, best-model SEDs and plots)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import grpc
import numpy as np
from tqdm.auto import tqdm

from mephisto_sed.agents.agentfit import AgentResults, rows_table, write_agent_results
from mephisto_sed.agents.execute import Execution, Source
from mephisto_sed.agents.records import load
from mephisto_sed.agents.search import SearchResult
from mephisto_sed.agents.space import SearchSpace, State
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.api.v1 import mephisto_pb2_grpc as pb_grpc
from mephisto_sed.catalog import Catalog
from services.common.codec import source_to_observation

BATCH = 500  # sources per SubmitBatch call (the gateway's default limit is 1000)


class GatewayClient:
    def __init__(self, address: str, token: str, ca_file: str | None = None):
        if ca_file:
            creds = grpc.ssl_channel_credentials(Path(ca_file).read_bytes())
            self.channel = grpc.secure_channel(address, creds)
        else:
            self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.GatewayStub(self.channel)
        self.metadata = [("authorization", f"Bearer {token}")]
        self.retries = 0  # calls retried after UNAVAILABLE
        self.results_calls = 0  # GetResults calls made (a large set takes several)

    def submit(self, req: pb.SubmitBatchRequest, timeout: float = 120.0) -> pb.SubmitBatchReply:
        """Submit a batch; retried while the gateway answers UNAVAILABLE (a NATS outage), under an
        idempotency key (one is made up if the request has none) so a retry never duplicates jobs."""
        if not req.idempotency_key:
            req.idempotency_key = f"client:{uuid.uuid4().hex}"
        return self._call(self.stub.SubmitBatch, req, timeout)

    def _call(self, method: Any, req: Any, timeout: float) -> Any:
        """``method(req)``, retried with back-off while it answers UNAVAILABLE, until ``timeout``."""
        deadline = time.monotonic() + timeout
        pause = 0.2
        while True:
            left = deadline - time.monotonic()
            try:
                return method(req, metadata=self.metadata, timeout=max(left, 0.1))
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() + pause > deadline:
                    raise
                self.retries += 1
            time.sleep(pause)
            pause = min(pause * 2, 5.0)

    def results(self, job_ids: list[str]) -> pb.GetResultsReply:
        """Every job's result or record; asks again for what a size-limited reply left out."""
        out = pb.GetResultsReply()
        for i in range(0, len(job_ids), BATCH):
            ask = job_ids[i : i + BATCH]
            while ask:
                part = self._call(self.stub.GetResults, pb.GetResultsRequest(job_ids=ask), 60.0)
                self.results_calls += 1
                out.results.extend(part.results)
                out.pending.extend(part.pending)
                if list(part.not_sent) == ask:  # cannot happen (a reply holds at least one): never loop
                    raise RuntimeError("the gateway sent none of the results asked for")
                ask = list(part.not_sent)
        return out

    def job(self, job_id: str) -> pb.Job:
        return self.stub.GetJob(pb.GetJobRequest(job_id=job_id), metadata=self.metadata, timeout=30)

    def watch(self, job_id: str) -> Any:
        return self.stub.WatchJob(pb.WatchJobRequest(job_id=job_id), metadata=self.metadata)

    def close(self) -> None:
        self.channel.close()


def catalog_requests(
    catalog: Catalog,
    bands: list[str],
    budget: pb.Budget | None = None,
    seed: int = 0,
    pcigale_ini: str = "",
    idempotency_key: str = "",
) -> list[pb.SubmitBatchRequest]:
    reqs = []
    for start in range(0, len(catalog), BATCH):
        obs = [
            source_to_observation(Source.from_catalog(catalog, i, bands))
            for i in range(start, min(start + BATCH, len(catalog)))
        ]
        reqs.append(
            pb.SubmitBatchRequest(
                sources=obs,
                bands=bands,
                budget=budget or pb.Budget(),
                seed=seed,
                pcigale_ini=pcigale_ini,
                idempotency_key=f"{idempotency_key}:{start}" if idempotency_key else "",
            )
        )
    return reqs


@dataclass
class Submitted:
    job_ids: list[str]
    results: list[pb.SourceResult]
    failed: list[pb.Job]
    seconds: float


def run_catalog(
    client: GatewayClient,
    reqs: list[pb.SubmitBatchRequest],
    watch: bool = False,
    progress: bool = True,
    poll: float = 0.5,
    timeout: float = 3600.0,
) -> Submitted:
    """Submit every request, then follow the jobs until all are done or failed."""
    t0 = time.perf_counter()
    job_ids: list[str] = []
    for req in reqs:
        job_ids += list(client.submit(req).job_ids)
    done: dict[str, pb.SourceResult] = {}
    failed: dict[str, pb.Job] = {}
    bar = tqdm(total=len(job_ids), desc="platform fit", unit="src", disable=not progress)
    deadline = time.monotonic() + timeout
    while len(done) + len(failed) < len(job_ids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(job_ids) - len(done) - len(failed)} jobs unfinished after {timeout:.0f} s")
        waiting = [j for j in job_ids if j not in done and j not in failed]
        if watch and waiting:
            for ev in client.watch(waiting[0]):  # stream one job's steps while the others run
                bar.write(
                    f"{ev.source_id} [{ev.kind}] step {ev.step} models {ev.models_evaluated:,} "
                    f"best chi2_red {ev.best_reduced_chi_square:.2f} {ev.message}"
                )
        reply = client.results(waiting)
        for r in reply.results:
            done[r.job_id] = r
        for j in reply.pending:
            if j.status == pb.JOB_STATUS_FAILED:
                failed[j.job_id] = j
        bar.n = len(done) + len(failed)
        bar.refresh()
        if len(done) + len(failed) < len(job_ids) and not watch:
            time.sleep(poll)
    bar.close()
    order = {j: i for i, j in enumerate(job_ids)}
    return Submitted(
        job_ids,
        sorted(done.values(), key=lambda r: order[r.job_id]),
        sorted(failed.values(), key=lambda j: order[j.job_id]),
        time.perf_counter() - t0,
    )


def to_agent_results(sub: Submitted, catalog: Catalog, space: SearchSpace) -> AgentResults:
    """The platform's results in the shape `mephisto-sed fit` writes."""
    index = {str(catalog.ids[i]): i for i in range(len(catalog))}
    rows, searches = [], []
    for r in sub.results:
        rows.append(json.loads(r.row_json))
        src = Source.from_catalog(catalog, index[r.source_id], space.bands)
        best = SimpleNamespace(
            execution=load(Execution, json.loads(r.best_fit_json)),
            state=load(State, json.loads(r.best_state_json)),
        )
        searches.append(
            SimpleNamespace(
                source=src,
                best=best,
                trace_json=lambda r=r: r.trace_json,
                trace_markdown=lambda r=r: r.trace_markdown,
            )
        )
    for j in sub.failed:
        rows.append(
            {
                "id": j.source_id,
                "anomaly": True,
                "models_evaluated": 0,
                "steps": 0,
                "anomaly_reason": f"failed: {j.error}",
            }
        )
    table = rows_table(rows) if rows else rows_table([{"id": ""}])[:0]
    # the searches are stand-ins carrying what write_agent_results reads of a SearchResult
    return AgentResults(table, cast(list[SearchResult], searches), space)


def write_outputs(sub: Submitted, catalog: Catalog, space: SearchSpace, out: str | Path, plots: bool = True) -> Path:
    res = to_agent_results(sub, catalog, space)
    if len(res.table) and "anomaly" in res.table.colnames:
        res.table["anomaly"] = np.asarray(res.table["anomaly"], dtype=bool)
    return write_agent_results(res, out, plots=plots)
