"""Properties of the flow definition builder and the least-privilege checker.

For any settings the config accepts, the FDL text is byte-stable, reads back
as the very document built, passes ``validate_callback_step`` and is run by the
local interpreter (``localcloud/fdl.py``) with the same topic, timeout, retry,
catch routes and catch steps. The policy builders never emit what
``wildcard_violations`` flags, and any Allow statement with a ``*`` in an
Action is flagged.
"""

from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from infra.config import (
    MAX_QUEUE_RETENTION_SECONDS,
    MAX_TASK_TIMEOUT_SECONDS,
    PROJECT,
    PROJECT_KEYS,
    ConfigError,
    full_key,
    settings_from_mapping,
)
from localcloud import fdl
from mns_callback_flow import policies
from mns_callback_flow.flow_definition import build_flow_definition, flow_definition_document, validate_callback_step
from mns_callback_flow.limits import MAX_CAUSE, MAX_RETRY_ATTEMPTS, MAX_RETRY_INTERVAL_SECONDS

PROPERTY = settings(max_examples=100, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- strategies

topic_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,254}", fullmatch=True)
error_names = st.one_of(st.sampled_from(["FnF.ALL", "FnF.TaskTimeout", "CallbackOutputInvalid"]),
                        st.from_regex(r"[A-Za-z0-9_.:-]{1,128}", fullmatch=True))
error_lists = st.lists(error_names, min_size=1, max_size=3)


@st.composite
def retry_rules(draw: st.DrawFn) -> dict:
    interval = draw(st.integers(1, MAX_RETRY_INTERVAL_SECONDS))
    rule: dict = {"errors": draw(error_lists)}
    if draw(st.booleans()):
        rule["intervalSeconds"] = interval
    if draw(st.booleans()):
        rule["maxAttempts"] = draw(st.integers(1, MAX_RETRY_ATTEMPTS))
    if draw(st.booleans()):
        rule["multiplier"] = draw(st.one_of(st.integers(1, 100), st.floats(1, 100)))
    if draw(st.booleans()):
        rule["maxIntervalSeconds"] = draw(st.integers(rule.get("intervalSeconds", 1), MAX_RETRY_INTERVAL_SECONDS))
    return rule


# Any text, with the characters YAML treats specially (line breaks, BOM, quotes) made common.
free_text = st.characters() | st.sampled_from("\x85\u2028\u2029\r\n\t\ufeff\x00'\"#:- ")
statuses = st.text(free_text, min_size=1, max_size=256).filter(lambda s: not s.startswith("$"))
catch_rules = st.one_of(
    st.fixed_dictionaries({"errors": error_lists, "status": statuses}),
    st.fixed_dictionaries({"errors": error_lists, "fail": st.fixed_dictionaries(
        {"error": error_names}, optional={"cause": st.text(free_text, max_size=MAX_CAUSE // 8)})}),
)


@st.composite
def config_values(draw: st.DrawFn) -> dict:
    values = {"alicloud:region": "cn-hangzhou", full_key("topicName"): draw(topic_names),
              full_key("taskTimeoutSeconds"): draw(st.integers(1, MAX_TASK_TIMEOUT_SECONDS))}
    if values[full_key("taskTimeoutSeconds")] > MAX_QUEUE_RETENTION_SECONDS:
        values[full_key("deadLetterQueue")] = False  # no queue keeps a message that long
    as_json = draw(st.booleans())  # Pulumi may hand structured config over as JSON text
    for key, rules in (("taskRetry", retry_rules()), ("taskCatch", catch_rules)):
        chosen = draw(st.lists(rules, max_size=3))
        if chosen or draw(st.booleans()):
            values[full_key(key)] = json.dumps(chosen) if as_json else chosen
    return values


# --------------------------------------------------------------------------- flow definition

def _catching(status: str) -> dict:
    return {"alicloud:region": "cn-hangzhou", full_key("topicName"): "t",
            full_key("taskTimeoutSeconds"): 60, full_key("taskCatch"): [{"errors": ["FnF.ALL"], "status": status}]}


@PROPERTY
@given(values=config_values())
@example(values=_catching("\x85"))  # NEL: read back as a space from a single-quoted YAML scalar
@example(values=_catching("done\u2028now\u2029"))
@example(values=_catching("a\r\nb"))
def test_every_accepted_setting_gives_a_stable_valid_definition_the_interpreter_runs(values: dict) -> None:
    settings_ = settings_from_mapping(values)
    text = build_flow_definition(settings_.callback_task)
    # Byte-stable: again, and from settings parsed again from the same config.
    assert build_flow_definition((settings_from_mapping(values)).callback_task) == text
    assert text.endswith("\n") and "\t" not in text
    document = yaml.safe_load(text)
    assert document == flow_definition_document(settings_.callback_task)  # the text says exactly what was built
    validate_callback_step(document)

    flow = fdl.parse_flow(text)
    task = flow.steps[0]
    assert isinstance(task, fdl.TaskStep)
    assert (task.name, task.topic, task.timeout_seconds) == (
        "mns-topic-task", settings_.topic_name, settings_.task_timeout_seconds)
    assert {(m.target, m.source) for m in task.input_mappings} >= {("taskToken", "$context.task.token")}
    assert [(r.errors, r.interval_seconds, r.max_attempts, r.multiplier, r.max_interval_seconds)
            for r in task.retry] == [
        (rule.errors, rule.interval_seconds, rule.max_attempts, rule.multiplier, rule.max_interval_seconds)
        for rule in settings_.task_retry]
    assert len(flow.steps) == 1 + len(settings_.task_catch)
    assert flow.after(task) is None  # success ends the flow, never runs into a catch step
    for index, (route, rule) in enumerate(zip(task.catch, settings_.task_catch, strict=True), start=1):
        assert route.errors == rule.errors and route.goto == f"catch-{index}"
        step = flow.step(route.goto)
        if rule.status is not None:
            assert isinstance(step, fdl.PassStep) and flow.after(step) is None
            assert fdl.apply_mappings(step.output_mappings, {}) == {"status": rule.status}
        else:
            assert isinstance(step, fdl.FailStep)
            assert (step.error, step.cause) == (rule.fail_error, rule.fail_cause or "")
    # The route the interpreter takes for each configured error is the first rule naming it.
    for rule in settings_.task_catch:
        for error in rule.errors:
            first = next(i for i, r in enumerate(settings_.task_catch, start=1)
                         if error in r.errors or "FnF.ALL" in r.errors)
            assert fdl.catch_target(task, error) == f"catch-{first}"


# --------------------------------------------------------------------------- policies

regions = st.from_regex(r"[a-z]{2}(-[a-z]{1,10}){1,2}(-[0-9]{1,2})?", fullmatch=True)
accounts = st.from_regex(r"[0-9]{1,32}", fullmatch=True)
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,60}", fullmatch=True)
log_projects = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)


@PROPERTY
@given(region=regions, account=accounts, topic=topic_names, flow=names, project=log_projects, store=names)
def test_the_builders_never_emit_what_the_checker_flags(region: str, account: str, topic: str, flow: str,
                                                        project: str, store: str) -> None:
    arn = policies.topic_messages_arn(region, account, topic)
    documents = [
        policies.report_task_policy(),
        policies.publish_policy(arn),
        policies.log_write_policy(region, account, project, store),
        policies.start_execution_policy(),
    ]
    for text in documents:
        assert policies.wildcard_violations(text) == [], text
        assert policies.wildcard_violations(json.loads(text)) == []
        assert policies.canonical_json(json.loads(text)) == text  # canonical: RAM's reformatting shows no diff


action_parts = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12)
wild_actions = st.builds(lambda head, tail: f"{head}*{tail}", action_parts, action_parts)
resources = st.one_of(st.sampled_from(["*", "acs:fnf:cn-hangzhou:1:flow/f", "acs:mns:*:*:/topics/t/messages"]),
                      st.text(max_size=30))
effects = st.one_of(st.sampled_from(["Allow", "allow", "ALLOW", "deny", "Deny ", ""]), st.text(max_size=6)).filter(
    lambda effect: effect != "Deny")


@st.composite
def statements_with_a_wild_action(draw: st.DrawFn) -> dict:
    actions = draw(st.lists(st.one_of(st.sampled_from(policies.REPORT_ACTIONS), action_parts), max_size=3))
    actions.insert(draw(st.integers(0, len(actions))), draw(wild_actions))
    statement = {"Action": actions[0] if len(actions) == 1 and draw(st.booleans()) else actions,
                 "Resource": draw(st.one_of(resources, st.lists(resources, max_size=3)))}
    if draw(st.booleans()):
        statement["Effect"] = draw(effects)
    return statement


any_statement = st.dictionaries(st.sampled_from(["Action", "Effect", "Resource", "Condition"]),
                                st.one_of(st.text(max_size=10), st.lists(st.text(max_size=10), max_size=2)),
                                max_size=4)


@PROPERTY
@given(wild=statements_with_a_wild_action(), others=st.lists(any_statement, max_size=3), where=st.integers(0, 3),
       as_text=st.booleans(), single=st.booleans())
def test_any_allow_statement_with_a_wildcard_action_is_flagged(wild: dict, others: list, where: int,
                                                               as_text: bool, single: bool) -> None:
    statements = list(others)
    where = min(where, len(statements))
    statements.insert(where, wild)
    body = wild if single and not others else statements
    policy = {"Version": "1", "Statement": body}
    problems = policies.wildcard_violations(json.dumps(policy) if as_text else policy)
    index = 0 if body is wild else where
    assert any(p.startswith(f"Statement[{index}]: wildcard action") for p in problems), problems


@PROPERTY
@given(statements=st.lists(any_statement, max_size=4), deny_wild=wild_actions)
def test_the_checker_never_raises_and_skips_only_exact_deny(statements: list, deny_wild: str) -> None:
    policy = {"Version": "1", "Statement": [*statements, {"Effect": "Deny", "Action": deny_wild, "Resource": "*"}]}
    problems = policies.wildcard_violations(policy)
    assert all(isinstance(p, str) and p for p in problems)
    assert not any(p.startswith(f"Statement[{len(statements)}]") for p in problems)


# --------------------------------------------------------------------------- hand-edited documents

def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a document a value sits, as a path of keys and indexes."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _replaced(document: dict, path: tuple, value: object) -> dict:
    copy = json.loads(json.dumps(document))
    holder = copy
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    return copy


yaml_leaves = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.floats(allow_nan=False),
                        st.text(max_size=6), st.sampled_from(["$", "catch-1", "mns-topic-task", "FnF.ALL"]))
yaml_trees = st.recursive(yaml_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["steps", "name", "type", "errors", "goto", "target", "source", "x"]),
                    inner, max_size=3)), max_leaves=8)
SAMPLE_DOCUMENT = flow_definition_document((settings_from_mapping({
    "alicloud:region": "cn-hangzhou", full_key("topicName"): "orders", full_key("taskTimeoutSeconds"): 60,
    full_key("taskRetry"): [{"errors": ["FnF.TaskTimeout"], "maxIntervalSeconds": 9}],
    full_key("taskCatch"): [{"errors": ["A"], "status": "gave up"}, {"errors": ["FnF.ALL"], "fail": {"error": "E"}}],
})).callback_task)
SAMPLE_PATHS = _paths(SAMPLE_DOCUMENT)


@settings(PROPERTY, max_examples=150)
@given(where=st.sampled_from(SAMPLE_PATHS), value=yaml_trees)
@example(where=("steps", 0, "catch"), value=5)
@example(where=("steps", 0, "retry"), value=5)
@example(where=("steps", 0, "name"), value=["a"])
@example(where=("steps", 1, "name"), value={"x": None})
@example(where=("steps", 0, "branches"), value=3)
def test_a_hand_edited_definition_is_accepted_or_refused_with_a_reason(where: tuple, value: object) -> None:
    from mns_callback_flow.flow_definition import FlowDefinitionError
    document = _replaced(SAMPLE_DOCUMENT, where, value)
    try:
        validate_callback_step(document)
    except FlowDefinitionError as exc:
        assert str(exc)
    try:
        fdl.parse_flow(yaml.safe_dump(document))
    except fdl.UnsupportedFlow as exc:
        assert str(exc)


@PROPERTY
@given(timeout=st.one_of(st.integers(-5, 5), st.booleans(), st.floats(allow_nan=False), st.text(max_size=3),
                         st.none(), st.integers(1, MAX_TASK_TIMEOUT_SECONDS)))
def test_a_callback_step_needs_a_positive_integer_timeout(timeout: object) -> None:
    from mns_callback_flow.flow_definition import FlowDefinitionError
    document = _replaced(SAMPLE_DOCUMENT, ("steps", 0, "timeoutSeconds"), timeout)
    if type(timeout) is int and timeout >= 1:
        validate_callback_step(document)
    else:
        try:
            validate_callback_step(document)
        except FlowDefinitionError as exc:
            assert "timeoutSeconds" in str(exc)
        else:
            raise AssertionError(f"timeoutSeconds={timeout!r} passed")


@PROPERTY
@given(arn=st.sampled_from(["acs:fc:cn-hangzhou:1:services/s.LATEST/functions/f", "acs:fnf:::flow/other",
                            "acs:mnsx:::/topics/t/messages", "mns:::/topics/t/messages"]))
def test_only_steps_publishing_to_mns_are_held_to_the_token_rule(arn: str) -> None:
    # A waitForCallback task on another service reports its own way: no token mapping demanded.
    document = json.loads(json.dumps(SAMPLE_DOCUMENT))
    document["steps"].append({"type": "task", "name": "other", "resourceArn": arn, "pattern": "waitForCallback"})
    validate_callback_step(document)


@PROPERTY
@given(region=regions, account=accounts, topic=topic_names, flow=names,
       resource=st.sampled_from(["acs:mns:{r}:{a}:/topics/{t}/*", "acs:fnf:{r}:{a}:flow/{f}/*", "acs:fnf:{r}:{a}:flow/*",
                                 "acs:fnf:{r}:{a}:flow/{f}/execution*", "acs:mns:{r}:{a}:/topics/*/messages",
                                 "acs:fnf:{r}:{a}:*", "acs:fnf:{r}:{a}:/*",
                                 "a*:fnf:{r}:{a}:"]))
def test_a_trailing_star_is_narrow_only_below_a_named_flow_execution(region: str, account: str, topic: str,
                                                                     flow: str, resource: str) -> None:
    # `flow/<name>/execution/*` (one flow's executions) is the only wildcard resource the builders write;
    # one level up (`/topics/<t>/*`, `flow/<name>/*`) reaches everything below a named resource.
    statement = {"Effect": "Allow", "Action": ["fnf:DescribeExecution"],
                 "Resource": resource.format(r=region, a=account, t=topic, f=flow)}
    narrow = {**statement, "Resource": f"acs:fnf:{region}:{account}:flow/{flow}/execution/*"}
    assert policies.wildcard_violations({"Version": "1", "Statement": [narrow]}) == []
    problems = policies.wildcard_violations({"Version": "1", "Statement": [narrow, statement]})
    assert [p.split(":")[0] for p in problems] == ["Statement[1]"], problems


config_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                          st.sampled_from(["true", "3.0", "1e400", "nan", "-1", "128", "[]", "[{}]", "9" * 5000,
                                           '[{"errors": ["a"], "status": "x"}]']))
config_trees = st.recursive(config_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["errors", "status", "fail", "error", "cause", "intervalSeconds", "maxAttempts",
                                     "multiplier", "maxIntervalSeconds"]), inner, max_size=4)), max_leaves=10)


@PROPERTY
@given(values=st.dictionaries(st.sampled_from([full_key(k) for k in PROJECT_KEYS] + ["alicloud:region"]),
                              config_trees, max_size=5))
@example(values={full_key("taskTimeoutSeconds"): "9" * 5000})
@example(values={full_key("taskRetry"): '[{"errors": ["a"], "maxAttempts": ' + "9" * 5000 + "}]"})
def test_any_config_gives_settings_or_a_config_error_naming_the_key(values: dict) -> None:
    values.setdefault("alicloud:region", "cn-hangzhou")
    try:
        settings_from_mapping(values)
    except ConfigError as exc:
        named = exc.key.split("[")[0].split(".")[0]
        assert named in values or named.removeprefix(f"{PROJECT}:") in PROJECT_KEYS, exc.key
