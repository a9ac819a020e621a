from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_QUEUED: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_DONE: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_QUEUED: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_DONE: JobStatus
JOB_STATUS_FAILED: JobStatus

class BandFlux(_message.Message):
    __slots__ = ("filter", "flux_mjy", "error_mjy", "upper_limit")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    FLUX_MJY_FIELD_NUMBER: _ClassVar[int]
    ERROR_MJY_FIELD_NUMBER: _ClassVar[int]
    UPPER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    filter: str
    flux_mjy: float
    error_mjy: float
    upper_limit: bool
    def __init__(self, filter: _Optional[str] = ..., flux_mjy: _Optional[float] = ..., error_mjy: _Optional[float] = ..., upper_limit: bool = ...) -> None: ...

class Observation(_message.Message):
    __slots__ = ("source_id", "redshift", "bands", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    REDSHIFT_FIELD_NUMBER: _ClassVar[int]
    BANDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    redshift: float
    bands: _containers.RepeatedCompositeFieldContainer[BandFlux]
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, source_id: _Optional[str] = ..., redshift: _Optional[float] = ..., bands: _Optional[_Iterable[_Union[BandFlux, _Mapping]]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SearchSpaceRef(_message.Message):
    __slots__ = ("space_id", "space_json")
    SPACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPACE_JSON_FIELD_NUMBER: _ClassVar[int]
    space_id: str
    space_json: str
    def __init__(self, space_id: _Optional[str] = ..., space_json: _Optional[str] = ...) -> None: ...

class Configuration(_message.Message):
    __slots__ = ("space", "modules", "state_json", "n_models")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    STATE_JSON_FIELD_NUMBER: _ClassVar[int]
    N_MODELS_FIELD_NUMBER: _ClassVar[int]
    space: SearchSpaceRef
    modules: _containers.RepeatedScalarFieldContainer[str]
    state_json: str
    n_models: int
    def __init__(self, space: _Optional[_Union[SearchSpaceRef, _Mapping]] = ..., modules: _Optional[_Iterable[str]] = ..., state_json: _Optional[str] = ..., n_models: _Optional[int] = ...) -> None: ...

class Action(_message.Message):
    __slots__ = ("type", "module", "param", "rationale", "rule", "action_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    PARAM_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    ACTION_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    module: str
    param: str
    rationale: str
    rule: str
    action_json: str
    def __init__(self, type: _Optional[str] = ..., module: _Optional[str] = ..., param: _Optional[str] = ..., rationale: _Optional[str] = ..., rule: _Optional[str] = ..., action_json: _Optional[str] = ...) -> None: ...

class FitResult(_message.Message):
    __slots__ = ("n_models", "chi2", "reduced_chi_square", "best_model_json", "seconds", "detail_json")
    N_MODELS_FIELD_NUMBER: _ClassVar[int]
    CHI2_FIELD_NUMBER: _ClassVar[int]
    REDUCED_CHI_SQUARE_FIELD_NUMBER: _ClassVar[int]
    BEST_MODEL_JSON_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_JSON_FIELD_NUMBER: _ClassVar[int]
    n_models: int
    chi2: float
    reduced_chi_square: float
    best_model_json: str
    seconds: float
    detail_json: str
    def __init__(self, n_models: _Optional[int] = ..., chi2: _Optional[float] = ..., reduced_chi_square: _Optional[float] = ..., best_model_json: _Optional[str] = ..., seconds: _Optional[float] = ..., detail_json: _Optional[str] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("reduced_chi_square", "patterns", "plausibility", "n_effective", "score", "summary", "signature", "detail_json")
    REDUCED_CHI_SQUARE_FIELD_NUMBER: _ClassVar[int]
    PATTERNS_FIELD_NUMBER: _ClassVar[int]
    PLAUSIBILITY_FIELD_NUMBER: _ClassVar[int]
    N_EFFECTIVE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_JSON_FIELD_NUMBER: _ClassVar[int]
    reduced_chi_square: float
    patterns: _containers.RepeatedScalarFieldContainer[str]
    plausibility: _containers.RepeatedScalarFieldContainer[str]
    n_effective: float
    score: float
    summary: str
    signature: _containers.RepeatedScalarFieldContainer[float]
    detail_json: str
    def __init__(self, reduced_chi_square: _Optional[float] = ..., patterns: _Optional[_Iterable[str]] = ..., plausibility: _Optional[_Iterable[str]] = ..., n_effective: _Optional[float] = ..., score: _Optional[float] = ..., summary: _Optional[str] = ..., signature: _Optional[_Iterable[float]] = ..., detail_json: _Optional[str] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("max_models", "max_steps", "max_tokens", "max_seconds")
    MAX_MODELS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    max_models: int
    max_steps: int
    max_tokens: int
    max_seconds: float
    def __init__(self, max_models: _Optional[int] = ..., max_steps: _Optional[int] = ..., max_tokens: _Optional[int] = ..., max_seconds: _Optional[float] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("job_id", "step", "observation", "configuration")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    step: int
    observation: Observation
    configuration: Configuration
    def __init__(self, job_id: _Optional[str] = ..., step: _Optional[int] = ..., observation: _Optional[_Union[Observation, _Mapping]] = ..., configuration: _Optional[_Union[Configuration, _Mapping]] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("job_id", "step", "observation", "configuration", "fit")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    FIT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    step: int
    observation: Observation
    configuration: Configuration
    fit: FitResult
    def __init__(self, job_id: _Optional[str] = ..., step: _Optional[int] = ..., observation: _Optional[_Union[Observation, _Mapping]] = ..., configuration: _Optional[_Union[Configuration, _Mapping]] = ..., fit: _Optional[_Union[FitResult, _Mapping]] = ...) -> None: ...

class AdvanceRequest(_message.Message):
    __slots__ = ("job_id", "step", "fit", "evaluation")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    FIT_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    step: int
    fit: FitResult
    evaluation: Evaluation
    def __init__(self, job_id: _Optional[str] = ..., step: _Optional[int] = ..., fit: _Optional[_Union[FitResult, _Mapping]] = ..., evaluation: _Optional[_Union[Evaluation, _Mapping]] = ...) -> None: ...

class AdvanceReply(_message.Message):
    __slots__ = ("execute", "done", "duplicate")
    EXECUTE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    execute: ExecuteRequest
    done: SourceResult
    duplicate: bool
    def __init__(self, execute: _Optional[_Union[ExecuteRequest, _Mapping]] = ..., done: _Optional[_Union[SourceResult, _Mapping]] = ..., duplicate: bool = ...) -> None: ...

class ProposeRequest(_message.Message):
    __slots__ = ("observation", "configuration", "fit", "evaluation", "max_actions")
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    FIT_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    observation: Observation
    configuration: Configuration
    fit: FitResult
    evaluation: Evaluation
    max_actions: int
    def __init__(self, observation: _Optional[_Union[Observation, _Mapping]] = ..., configuration: _Optional[_Union[Configuration, _Mapping]] = ..., fit: _Optional[_Union[FitResult, _Mapping]] = ..., evaluation: _Optional[_Union[Evaluation, _Mapping]] = ..., max_actions: _Optional[int] = ...) -> None: ...

class ProposeReply(_message.Message):
    __slots__ = ("actions", "tokens", "policy")
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedCompositeFieldContainer[Action]
    tokens: int
    policy: str
    def __init__(self, actions: _Optional[_Iterable[_Union[Action, _Mapping]]] = ..., tokens: _Optional[int] = ..., policy: _Optional[str] = ...) -> None: ...

class DistillRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DistillReply(_message.Message):
    __slots__ = ("observations", "duplicate")
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    observations: int
    duplicate: bool
    def __init__(self, observations: _Optional[int] = ..., duplicate: bool = ...) -> None: ...

class KnowledgeEntry(_message.Message):
    __slots__ = ("id", "text", "action_json", "tried", "helped", "mean_gain", "sources", "similarity", "signature", "mean_models", "domains")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ACTION_JSON_FIELD_NUMBER: _ClassVar[int]
    TRIED_FIELD_NUMBER: _ClassVar[int]
    HELPED_FIELD_NUMBER: _ClassVar[int]
    MEAN_GAIN_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    MEAN_MODELS_FIELD_NUMBER: _ClassVar[int]
    DOMAINS_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    action_json: str
    tried: int
    helped: int
    mean_gain: float
    sources: _containers.RepeatedScalarFieldContainer[str]
    similarity: float
    signature: _containers.RepeatedScalarFieldContainer[float]
    mean_models: float
    domains: _containers.RepeatedCompositeFieldContainer[Domain]
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., action_json: _Optional[str] = ..., tried: _Optional[int] = ..., helped: _Optional[int] = ..., mean_gain: _Optional[float] = ..., sources: _Optional[_Iterable[str]] = ..., similarity: _Optional[float] = ..., signature: _Optional[_Iterable[float]] = ..., mean_models: _Optional[float] = ..., domains: _Optional[_Iterable[_Union[Domain, _Mapping]]] = ...) -> None: ...

class Domain(_message.Message):
    __slots__ = ("redshift", "rest_min_um", "rest_max_um")
    REDSHIFT_FIELD_NUMBER: _ClassVar[int]
    REST_MIN_UM_FIELD_NUMBER: _ClassVar[int]
    REST_MAX_UM_FIELD_NUMBER: _ClassVar[int]
    redshift: float
    rest_min_um: float
    rest_max_um: float
    def __init__(self, redshift: _Optional[float] = ..., rest_min_um: _Optional[float] = ..., rest_max_um: _Optional[float] = ...) -> None: ...

class SearchKnowledgeRequest(_message.Message):
    __slots__ = ("signature", "text_contains", "limit", "outcomes_at_redshift", "domain", "levels")
    class LevelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    TEXT_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_AT_REDSHIFT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    signature: _containers.RepeatedScalarFieldContainer[float]
    text_contains: str
    limit: int
    outcomes_at_redshift: float
    domain: Domain
    levels: _containers.ScalarMap[str, float]
    def __init__(self, signature: _Optional[_Iterable[float]] = ..., text_contains: _Optional[str] = ..., limit: _Optional[int] = ..., outcomes_at_redshift: _Optional[float] = ..., domain: _Optional[_Union[Domain, _Mapping]] = ..., levels: _Optional[_Mapping[str, float]] = ...) -> None: ...

class SearchKnowledgeReply(_message.Message):
    __slots__ = ("entries", "outcomes_json")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_JSON_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[KnowledgeEntry]
    outcomes_json: str
    def __init__(self, entries: _Optional[_Iterable[_Union[KnowledgeEntry, _Mapping]]] = ..., outcomes_json: _Optional[str] = ...) -> None: ...

class SourceResult(_message.Message):
    __slots__ = ("job_id", "source_id", "redshift", "anomaly", "anomaly_reason", "stop_reason", "modules", "models_evaluated", "steps", "tokens", "reduced_chi_square", "row_json", "best_model_json", "policy", "trace_json", "trace_markdown", "best_fit_json", "best_state_json")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    REDSHIFT_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_REASON_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    MODELS_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    REDUCED_CHI_SQUARE_FIELD_NUMBER: _ClassVar[int]
    ROW_JSON_FIELD_NUMBER: _ClassVar[int]
    BEST_MODEL_JSON_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    TRACE_JSON_FIELD_NUMBER: _ClassVar[int]
    TRACE_MARKDOWN_FIELD_NUMBER: _ClassVar[int]
    BEST_FIT_JSON_FIELD_NUMBER: _ClassVar[int]
    BEST_STATE_JSON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    source_id: str
    redshift: float
    anomaly: bool
    anomaly_reason: str
    stop_reason: str
    modules: _containers.RepeatedScalarFieldContainer[str]
    models_evaluated: int
    steps: int
    tokens: int
    reduced_chi_square: float
    row_json: str
    best_model_json: str
    policy: str
    trace_json: str
    trace_markdown: str
    best_fit_json: str
    best_state_json: str
    def __init__(self, job_id: _Optional[str] = ..., source_id: _Optional[str] = ..., redshift: _Optional[float] = ..., anomaly: bool = ..., anomaly_reason: _Optional[str] = ..., stop_reason: _Optional[str] = ..., modules: _Optional[_Iterable[str]] = ..., models_evaluated: _Optional[int] = ..., steps: _Optional[int] = ..., tokens: _Optional[int] = ..., reduced_chi_square: _Optional[float] = ..., row_json: _Optional[str] = ..., best_model_json: _Optional[str] = ..., policy: _Optional[str] = ..., trace_json: _Optional[str] = ..., trace_markdown: _Optional[str] = ..., best_fit_json: _Optional[str] = ..., best_state_json: _Optional[str] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("job_id", "observation", "space_id", "budget", "seed", "created_unix")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    SPACE_ID_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    observation: Observation
    space_id: str
    budget: Budget
    seed: int
    created_unix: float
    def __init__(self, job_id: _Optional[str] = ..., observation: _Optional[_Union[Observation, _Mapping]] = ..., space_id: _Optional[str] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., seed: _Optional[int] = ..., created_unix: _Optional[float] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "source_id", "status", "error", "steps", "models_evaluated", "best_reduced_chi_square", "created_unix", "updated_unix", "result")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    MODELS_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    BEST_REDUCED_CHI_SQUARE_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_FIELD_NUMBER: _ClassVar[int]
    UPDATED_UNIX_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    source_id: str
    status: JobStatus
    error: str
    steps: int
    models_evaluated: int
    best_reduced_chi_square: float
    created_unix: float
    updated_unix: float
    result: SourceResult
    def __init__(self, job_id: _Optional[str] = ..., source_id: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., error: _Optional[str] = ..., steps: _Optional[int] = ..., models_evaluated: _Optional[int] = ..., best_reduced_chi_square: _Optional[float] = ..., created_unix: _Optional[float] = ..., updated_unix: _Optional[float] = ..., result: _Optional[_Union[SourceResult, _Mapping]] = ...) -> None: ...

class ProgressEvent(_message.Message):
    __slots__ = ("job_id", "source_id", "kind", "step", "action", "models_evaluated", "reduced_chi_square", "best_reduced_chi_square", "message", "time_unix")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MODELS_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    REDUCED_CHI_SQUARE_FIELD_NUMBER: _ClassVar[int]
    BEST_REDUCED_CHI_SQUARE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    source_id: str
    kind: str
    step: int
    action: str
    models_evaluated: int
    reduced_chi_square: float
    best_reduced_chi_square: float
    message: str
    time_unix: float
    def __init__(self, job_id: _Optional[str] = ..., source_id: _Optional[str] = ..., kind: _Optional[str] = ..., step: _Optional[int] = ..., action: _Optional[str] = ..., models_evaluated: _Optional[int] = ..., reduced_chi_square: _Optional[float] = ..., best_reduced_chi_square: _Optional[float] = ..., message: _Optional[str] = ..., time_unix: _Optional[float] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("sources", "idempotency_key", "pcigale_ini", "bands", "budget", "seed")
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PCIGALE_INI_FIELD_NUMBER: _ClassVar[int]
    BANDS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[Observation]
    idempotency_key: str
    pcigale_ini: str
    bands: _containers.RepeatedScalarFieldContainer[str]
    budget: Budget
    seed: int
    def __init__(self, sources: _Optional[_Iterable[_Union[Observation, _Mapping]]] = ..., idempotency_key: _Optional[str] = ..., pcigale_ini: _Optional[str] = ..., bands: _Optional[_Iterable[str]] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., seed: _Optional[int] = ...) -> None: ...

class SubmitBatchReply(_message.Message):
    __slots__ = ("job_ids", "duplicate")
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    duplicate: bool
    def __init__(self, job_ids: _Optional[_Iterable[str]] = ..., duplicate: bool = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetResultsRequest(_message.Message):
    __slots__ = ("job_ids",)
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetResultsReply(_message.Message):
    __slots__ = ("results", "pending", "not_sent")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    NOT_SENT_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SourceResult]
    pending: _containers.RepeatedCompositeFieldContainer[Job]
    not_sent: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, results: _Optional[_Iterable[_Union[SourceResult, _Mapping]]] = ..., pending: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., not_sent: _Optional[_Iterable[str]] = ...) -> None: ...
