"""Component: the callback function, its public HTTP trigger and its RAM role.

FC 3.0 (``fc.V3Function`` + ``fc.V3Trigger``) by default; FC 2.0 (``fc.Service``
+ ``fc.Function`` + ``fc.Trigger``, deprecated by the provider) on request, for
accounts that still run it. The role may do exactly two things: report task
results to Serverless Workflow and, when logging is on, write to its own logstore.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NotRequired, TypedDict

import pulumi
import pulumi_alicloud as alicloud

from infra import packaging, policies, provider_limits
from infra.config import cpu_refusal, default_cpu, runtime_refusal
from infra.function_environment import function_environment
from infra.ram_grants import grant, service_role

TYPE_TOKEN = "mns-callback-flow:index:CallbackFunction"
FC_PRINCIPAL = "fc.aliyuncs.com"
TRIGGER_NAME = "http"
# Entry points of function/index.py (docs/design.md "Fixed interfaces").
HANDLER_FC3 = "index.handler"
HANDLER_FC2 = "index.wsgi_handler"


class CallbackFunctionArgs(TypedDict):
    """What the function component needs."""

    function_name: str
    """The function's name (FC 2.0: also the base of its service's name)."""
    function_compute: str
    """``"3.0"`` (``fc.V3Function``) or ``"2.0"`` (``fc.Service`` + ``fc.Function``)."""
    region: str
    """The region: the handler's FnF endpoint and its log-write permission are built from it."""
    account_id: pulumi.Input[str]
    """The account that owns the logstore (for the log-write policy)."""
    runtime: str
    """FC Python runtime, e.g. ``python3.10``; decides which dependencies are vendored."""
    memory_size: int
    """Memory in MB."""
    cpu: NotRequired[float | None]
    """vCPU of an FC 3.0 function (0.05 steps, 1:1 to 1:4 of memory in GB); None: the least
    the ratio allows. FC 2.0's ``fc.Function`` takes none."""
    timeout: int
    """Seconds FC lets one invocation run."""
    verify_signature: bool
    """Whether the handler checks MNS push signatures (only turn off for local tests)."""
    topic_name: str
    """The one MNS topic whose pushes the handler accepts (``MNS_TOPIC_NAME``)."""
    topic_owner: NotRequired[pulumi.Input[str]]
    """That topic's owner account id (``MNS_TOPIC_OWNER``); default ``account_id``."""
    notify_content_format: str
    """The subscription's push format, ``JSON``, ``XML`` or ``SIMPLIFIED`` (``MNS_NOTIFY_CONTENT_FORMAT``)."""
    cert_url_prefixes: NotRequired[tuple[str, ...]]
    """Signing-certificate URL prefixes the handler may trust; empty: the documented hosts."""
    work: NotRequired[str | None]
    """The work function, ``module:function`` in ``source_dir``; None: the built-in one."""
    log_project: NotRequired[str | None]
    """Simple Log Service project for the function's logs; with ``log_store``, or neither."""
    log_store: NotRequired[str | None]
    """Logstore in ``log_project``."""
    source_dir: NotRequired[str]
    """The archive root (default ``function/`` of this project)."""


def http_trigger_config(function_compute: str) -> str:
    """The HTTP trigger's config JSON.

    MNS cannot sign FC requests, so the trigger is anonymous and the handler's
    MNS signature check is the authentication (docs/platform-facts.md); only POST is allowed.
    FC 3.0 adds ``disableURLInternet: false`` (API 2023-03-30 HTTPTriggerConfig):
    MNS pushes over the Internet.

    Keys and values as in FC API HTTPTriggerConfig (2023-03-30 and 2021-04-06:
    ``authType`` ``function``/``anonymous``, ``methods`` list, ``disableURLInternet``
    boolean, true answers the default public URL with 403) and the provider's
    own HTTP trigger example (pulumi_alicloud 4.0.0 ``fc/v3_trigger.py``:
    ``{"authType": "anonymous", "methods": ["GET", "POST"]}``).
    """
    config: dict[str, object] = {"authType": "anonymous", "methods": ["POST"]}
    if function_compute == "3.0":
        config["disableURLInternet"] = False
    return json.dumps(config, separators=(",", ":"), sort_keys=True)


def function_inputs(args: CallbackFunctionArgs) -> dict[str, object]:
    """The function's validated scalar inputs, by Pulumi input name.

    Refuses first, naming the argument, what the chosen FC generation or the
    provider's own schema rules (``infra.provider_limits``) would refuse at preview.
    """
    generation = args["function_compute"]
    refusal = runtime_refusal(generation, args["runtime"])
    if refusal is not None:
        raise ValueError(f"runtime={args['runtime']!r}: {refusal}")
    if generation == "3.0":
        cpu = args.get("cpu")
        cpu = default_cpu(args["memory_size"]) if cpu is None else cpu
        refusal = cpu_refusal(cpu, args["memory_size"])
        if refusal is not None:
            raise ValueError(f"cpu={cpu!r} with memory_size={args['memory_size']!r}: {refusal}")
        inputs = {"functionName": args["function_name"], "runtime": args["runtime"], "cpu": cpu,
                  "memorySize": args["memory_size"], "timeout": args["timeout"]}
        token = "alicloud:fc/v3Function:V3Function"
    else:
        if args.get("cpu") is not None:
            raise ValueError(f"cpu={args.get('cpu')!r}: FC 2.0's fc.Function takes no cpu; leave it unset")
        inputs = {"name": args["function_name"], "runtime": args["runtime"],
                  "memorySize": args["memory_size"], "timeout": args["timeout"]}
        token = "alicloud:fc/function:Function"
    argument = {"functionName": "function_name", "name": "function_name", "memorySize": "memory_size"}
    for name, expected in provider_limits.violations(token, inputs):
        raise ValueError(f"{argument.get(name, name)}={inputs[name]!r}: {expected}")
    return inputs


def fc2_trigger_url(account_id: str, region: str, service: str, function: str) -> str:
    """FC 2.0's HTTP trigger URL, built because its trigger resource exposes none.

    ``fc.Trigger`` (pulumi_alicloud 4.0.0 ``fc/trigger.py``, like terraform's
    ``alicloud_fc_trigger``) outputs only config, names, ``last_modified`` and
    ``trigger_id``. The form is FC 2.0's default proxy URL: host = the public
    endpoint ``<account>.<region>.fc.aliyuncs.com`` (FC 2.0 "Endpoints": the
    public one serves callers outside Alibaba Cloud such as MNS; the private one
    is ``<account>.<region>-internal.fc.aliyuncs.com``), path =
    ``/2016-08-15/proxy/<service>/<function>/`` (FC 2.0 FAQ "How do I handle a
    404 error when a browser or cURL is used to access a function?"). The
    handler verifies the MNS signature against that whole path (function/index.py).
    """
    return f"https://{account_id}.{region}.fc.aliyuncs.com/2016-08-15/proxy/{service}/{function}/"


class CallbackFunction(pulumi.ComponentResource):
    """The callback handler deployed from ``function/`` with an anonymous POST-only HTTP trigger."""

    role: alicloud.ram.Role
    policy: alicloud.ram.Policy
    policy_attachment: alicloud.ram.RolePolicyAttachment
    log_policy: alicloud.ram.Policy | None
    log_policy_attachment: alicloud.ram.RolePolicyAttachment | None
    service: alicloud.fc.Service | None
    function: alicloud.fc.V3Function | alicloud.fc.Function
    trigger: alicloud.fc.V3Trigger | alicloud.fc.Trigger
    archive: packaging.CodeArchive
    function_name: pulumi.Output[str]
    trigger_url: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CallbackFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if args["function_compute"] not in ("3.0", "2.0"):
            raise ValueError(f"function_compute must be '3.0' or '2.0', got {args['function_compute']!r}")
        # The archive first: an unbuildable source fails before anything is registered.
        source_dir = Path(args.get("source_dir") or packaging.FUNCTION_DIR)
        packaging.require_entry_point(source_dir, HANDLER_FC3 if args["function_compute"] == "3.0" else HANDLER_FC2)
        if args.get("work"):  # "module:function": a missing one would fail every push with a 500
            packaging.require_entry_point(source_dir, args["work"].replace(":", "."), kind="work function")
        inputs = function_inputs(args)
        self.archive = packaging.build_archive(source_dir, args["runtime"])
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        function_name = args["function_name"]
        region = args["region"]
        log_project, log_store = args.get("log_project"), args.get("log_store")

        self.role = service_role(
            f"{name}-role", f"{function_name}-role", FC_PRINCIPAL,
            f"Runs the callback function {function_name}: reports task results to Serverless Workflow.", self,
        )
        self.policy, self.policy_attachment = grant(
            f"{name}-policy", self.role, f"{function_name}-report",
            "fnf:ReportTaskSucceeded and fnf:ReportTaskFailed only.", policies.report_task_policy(), self,
        )
        grants: list[pulumi.Resource] = [self.policy_attachment]
        self.log_policy = self.log_policy_attachment = None
        if log_project and log_store:
            self.log_policy, self.log_policy_attachment = grant(
                f"{name}-log-policy", self.role, f"{function_name}-log-write",
                f"Write logs to {log_project}/{log_store} only.",
                pulumi.Output.from_input(args["account_id"]).apply(
                    lambda account: policies.log_write_policy(region, account, log_project, log_store)
                ),
                self,
            )
            grants.append(self.log_policy_attachment)

        # The topic's owner is an Output (the caller's account): the environment follows it.
        environment = pulumi.Output.from_input(args.get("topic_owner", args["account_id"])).apply(
            lambda owner: function_environment(
                region,
                args["verify_signature"],
                topic_owner=owner,
                topic_name=args["topic_name"],
                notify_content_format=args["notify_content_format"],
                cert_url_prefixes=tuple(args.get("cert_url_prefixes") or ()),
                work=args.get("work"),
            )
        )
        # The function only runs once its role may report (no AccessDenied on a first push).
        after_grants = pulumi.ResourceOptions(parent=self, depends_on=grants)

        if args["function_compute"] == "3.0":
            self.service = None
            self.function = alicloud.fc.V3Function(
                f"{name}-function",
                function_name=function_name,
                description="Reports MNS-pushed task tokens back to Serverless Workflow.",
                handler=HANDLER_FC3,
                runtime=args["runtime"],
                code=alicloud.fc.V3FunctionCodeArgs(zip_file=self.archive.base64, checksum=self.archive.crc64),
                memory_size=args["memory_size"],
                # Explicit, so the vCPU is in every preview (FC would pick one otherwise).
                cpu=inputs["cpu"],
                timeout=args["timeout"],
                role=self.role.arn,
                # The handler calls the public FnF endpoint.
                internet_access=True,
                environment_variables=environment,
                log_config=(
                    alicloud.fc.V3FunctionLogConfigArgs(project=log_project, logstore=log_store)
                    if log_project and log_store else None
                ),
                opts=after_grants,
            )
            self.trigger = alicloud.fc.V3Trigger(
                f"{name}-trigger",
                function_name=self.function.function_name,
                trigger_name=TRIGGER_NAME,
                trigger_type="http",
                qualifier="LATEST",
                trigger_config=http_trigger_config("3.0"),
                opts=child,
            )
            self.function_name = self.function.function_name
            # HTTPTrigger.urlInternet: the public https://<id>.<region>.fcapp.run
            # address (FC API 2023-03-30 struct HTTPTrigger).
            self.trigger_url = self.trigger.http_trigger.apply(lambda http: http.url_internet)
        else:
            # FC 2.0 takes the archive as a file: written content-addressed under build/.
            archive_path = packaging.write_archive(self.archive)
            self.service = alicloud.fc.Service(
                f"{name}-service",
                name=f"{function_name}-service",
                description="Service of the MNS callback function.",
                role=self.role.arn,
                internet_access=True,
                log_config=(
                    alicloud.fc.ServiceLogConfigArgs(project=log_project, logstore=log_store)
                    if log_project and log_store else None
                ),
                opts=after_grants,
            )
            self.function = alicloud.fc.Function(
                f"{name}-function",
                service=self.service.name,
                name=function_name,
                description="Reports MNS-pushed task tokens back to Serverless Workflow.",
                handler=HANDLER_FC2,
                runtime=args["runtime"],
                # Relative to the project directory, where Pulumi runs the program.
                filename=archive_path.relative_to(packaging.PROJECT_DIR).as_posix(),
                code_checksum=self.archive.crc64,
                memory_size=args["memory_size"],
                timeout=args["timeout"],
                environment_variables=environment,
                opts=child,
            )
            self.trigger = alicloud.fc.Trigger(
                f"{name}-trigger",
                service=self.service.name,
                function=self.function.name,
                name=TRIGGER_NAME,
                type="http",
                config=http_trigger_config("2.0"),
                opts=child,
            )
            self.function_name = self.function.name
            self.trigger_url = pulumi.Output.all(
                args["account_id"], self.service.name, self.function.name, self.trigger.id
            ).apply(lambda v: fc2_trigger_url(v[0], region, v[1], v[2]))

        self.role_arn = self.role.arn
        self.register_outputs(
            {"functionName": self.function_name, "triggerUrl": self.trigger_url, "roleArn": self.role_arn}
        )
