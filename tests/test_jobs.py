"""A job record's transitions (the proposer writes them through revision-checked updates)."""

from mephisto_sed.api.v1 import mephisto_pb2 as pb
from services.common.jobs import after_step, finished


def test_steps_add_up_and_a_late_step_never_reopens_a_finished_job():
    job = after_step(pb.Job(job_id="j"), step=0, models=1_000, reduced_chi_square=3.0)
    job = after_step(job, step=1, models=500, reduced_chi_square=4.0)
    assert job.status == pb.JOB_STATUS_RUNNING
    assert (job.steps, job.models_evaluated, job.best_reduced_chi_square) == (2, 1_500, 3.0)

    result = pb.SourceResult(job_id="j", steps=2, models_evaluated=1_500, reduced_chi_square=3.0)
    done = finished(job, result)
    assert done is not None and done.status == pb.JOB_STATUS_DONE and done.result == result
    assert finished(done, result) is None  # a redelivered stop changes nothing

    late = after_step(done, step=0, models=1_000, reduced_chi_square=2.0)  # a step recorded after the stop
    assert late.status == pb.JOB_STATUS_DONE and late.steps == 2


def test_a_failed_job_that_finishes_after_all_is_done_without_its_error():
    job = pb.Job(job_id="j", status=pb.JOB_STATUS_FAILED, error="executor crashed")
    assert after_step(job, 3, 10, 1.0).status == pb.JOB_STATUS_FAILED
    done = finished(job, pb.SourceResult(job_id="j", steps=4))
    assert done is not None and done.status == pb.JOB_STATUS_DONE and done.error == ""
