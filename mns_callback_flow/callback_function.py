"""Component: the callback function, its public HTTP trigger and its RAM role.

FC 3.0 (``fc.V3Function`` + ``fc.V3Trigger``) by default; FC 2.0 (``fc.Service``
+ ``fc.Function`` + ``fc.Trigger``, deprecated by the provider) on request, for
accounts that still run it. The role may do exactly two things: report task
results to Serverless Workflow and, when logging is on, write to its own logstore.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NotRequired, TypedDict

import pulumi
import pulumi_alicloud as alicloud

from mns_callback_flow import packaging, policies, provider_limits
from mns_callback_flow.errors import InvalidArgument
from mns_callback_flow.function_environment import function_environment
from mns_callback_flow.limits import cpu_refusal, default_cpu, runtime_refusal
from mns_callback_flow.ram_grants import Tags, grant, service_role

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
    region: pulumi.Input[str]
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
    topic_name: pulumi.Input[str]
    """The one MNS topic whose pushes the handler accepts (``MNS_TOPIC_NAME``)."""
    topic_owner: NotRequired[pulumi.Input[str]]
    """That topic's owner account id (``MNS_TOPIC_OWNER``); default ``account_id``."""
    notify_content_format: str
    """The subscription's push format, ``JSON``, ``XML`` or ``SIMPLIFIED`` (``MNS_NOTIFY_CONTENT_FORMAT``)."""
    cert_url_prefixes: NotRequired[Sequence[str]]
    """Signing-certificate URL prefixes the handler may trust; empty: the documented hosts."""
    work: NotRequired[str | None]
    """The work function, ``module:function`` in ``work_dir`` (or in the handler's own code);
    None: the built-in one."""
    work_dir: NotRequired[str | None]
    """A directory of the user's own work code, merged into the archive beside the handler;
    its ``requirements.txt`` is vendored by the same rules as the handler's."""
    log_project: NotRequired[pulumi.Input[str] | None]
    """Simple Log Service project for the function's logs; with ``log_store``, or neither."""
    log_store: NotRequired[pulumi.Input[str] | None]
    """Logstore in ``log_project``."""
    tags: NotRequired[Tags | None]
    """Tags for the function (FC 3.0) or its service (FC 2.0), and its role and policies."""
    resource_group_id: NotRequired[pulumi.Input[str] | None]
    """The resource group of the FC 3.0 function (FC 2.0's resources take none)."""
    build_dir: NotRequired[str | None]
    """FC 2.0 only: where the archive file is written (default ``build/`` under the working
    directory, which is the program's directory under ``pulumi up``)."""
    source_dir: NotRequired[str]
    """The handler's code (default: the one this package ships)."""


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
    provider's own schema rules (``mns_callback_flow.provider_limits``) would refuse at preview.
    """
    generation = args["function_compute"]
    refusal = runtime_refusal(generation, args["runtime"])
    if refusal is not None:
        raise InvalidArgument("runtime", args["runtime"], refusal)
    if generation == "3.0":
        cpu = function_cpu(args)
        refusal = cpu_refusal(cpu, args["memory_size"])
        if refusal is not None:
            raise InvalidArgument("cpu", cpu, f"with memory_size={args['memory_size']!r}: {refusal}")
        inputs = {"functionName": args["function_name"], "runtime": args["runtime"], "cpu": cpu,
                  "memorySize": args["memory_size"], "timeout": args["timeout"]}
        token = "alicloud:fc/v3Function:V3Function"
    else:
        if args.get("cpu") is not None:
            raise InvalidArgument("cpu", args.get("cpu"), "FC 2.0's fc.Function takes no cpu; leave it unset")
        inputs = {"name": args["function_name"], "runtime": args["runtime"],
                  "memorySize": args["memory_size"], "timeout": args["timeout"]}
        token = "alicloud:fc/function:Function"
    argument = {"functionName": "function_name", "name": "function_name", "memorySize": "memory_size"}
    for name, expected in provider_limits.violations(token, inputs):
        raise InvalidArgument(argument.get(name, name), inputs[name], expected)
    return inputs


def function_cpu(args: CallbackFunctionArgs) -> float:
    """An FC 3.0 function's vCPU: ``cpu``, or the least the ratio allows for ``memory_size``."""
    cpu = args.get("cpu")
    return default_cpu(args["memory_size"]) if cpu is None else cpu


def _public_url(http: alicloud.fc.outputs.V3TriggerHttpTrigger | None) -> str:
    """The trigger's public URL; the provider types it optional, and MNS cannot push without it."""
    url = http.url_internet if http is not None else None
    if not url:
        raise InvalidArgument(
            "trigger", url, "the HTTP trigger has no public URL (http_trigger.url_internet), "
            "so MNS could not push to it; the trigger config sets disableURLInternet false",
        )
    return url


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
    """The callback handler (this package's ``function/``, plus the user's work code) with an
    anonymous POST-only HTTP trigger."""

    function_name: pulumi.Output[str]
    trigger_url: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CallbackFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Children, reachable as attributes (not annotated on the class: a component
        # provider's analyzer reads class annotations as the component's outputs).
        self.role: alicloud.ram.Role
        self.policy: alicloud.ram.Policy
        self.policy_attachment: alicloud.ram.RolePolicyAttachment
        self.log_policy: alicloud.ram.Policy | None
        self.log_policy_attachment: alicloud.ram.RolePolicyAttachment | None
        self.service: alicloud.fc.Service | None
        self.function: alicloud.fc.V3Function | alicloud.fc.Function
        self.trigger: alicloud.fc.V3Trigger | alicloud.fc.Trigger
        self.archive: packaging.CodeArchive
        if args["function_compute"] not in ("3.0", "2.0"):
            raise InvalidArgument("function_compute", args["function_compute"], "expected '3.0' or '2.0'")
        # The archive first: an unbuildable source fails before anything is registered.
        source_dir = Path(args.get("source_dir") or packaging.FUNCTION_DIR)
        work_dir_arg = args.get("work_dir")
        work_dir = Path(work_dir_arg) if work_dir_arg else None
        packaging.require_entry_point(source_dir, HANDLER_FC3 if args["function_compute"] == "3.0" else HANDLER_FC2)
        work = args.get("work")
        if work:  # "module:function": a missing one would fail every push with a 500
            packaging.require_entry_point(work_dir or source_dir, work.replace(":", "."), kind="work function")
        function_inputs(args)  # refuses a bad runtime, cpu or provider-rule value before anything is built
        self.archive = packaging.build_archive(source_dir, args["runtime"], work_dir=work_dir)
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        function_name = args["function_name"]
        region = pulumi.Output.from_input(args["region"])
        log_project, log_store = args.get("log_project"), args.get("log_store")
        log_target = (log_project, log_store) if log_project is not None and log_store is not None else None
        tags = args.get("tags")

        self.role = service_role(
            f"{name}-role", f"{function_name}-role", FC_PRINCIPAL,
            f"Runs the callback function {function_name}: reports task results to Serverless Workflow.", self, tags,
        )
        self.policy, self.policy_attachment = grant(
            f"{name}-policy", self.role, f"{function_name}-report",
            "fnf:ReportTaskSucceeded and fnf:ReportTaskFailed only.", policies.report_task_policy(), self, tags,
        )
        grants: list[pulumi.Resource] = [self.policy_attachment]
        self.log_policy = self.log_policy_attachment = None
        if log_target is not None:
            project, logstore = log_target
            self.log_policy, self.log_policy_attachment = grant(
                f"{name}-log-policy", self.role, f"{function_name}-log-write",
                pulumi.Output.concat("Write logs to ", project, "/", logstore, " only."),
                pulumi.Output.all(region, args["account_id"], project, logstore).apply(
                    lambda v: policies.log_write_policy(v[0], v[1], v[2], v[3])
                ),
                self, tags,
            )
            grants.append(self.log_policy_attachment)

        # The topic's owner is an Output (the caller's account): the environment follows it.
        environment = pulumi.Output.all(
            region, args.get("topic_owner", args["account_id"]), args["topic_name"]
        ).apply(
            lambda v: function_environment(
                v[0],
                args["verify_signature"],
                topic_owner=v[1],
                topic_name=v[2],
                notify_content_format=args["notify_content_format"],
                cert_url_prefixes=tuple(args.get("cert_url_prefixes") or ()),
                work=work,
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
                cpu=function_cpu(args),
                timeout=args["timeout"],
                role=self.role.arn,
                # The handler calls the public FnF endpoint.
                internet_access=True,
                environment_variables=environment,
                log_config=(
                    alicloud.fc.V3FunctionLogConfigArgs(project=log_target[0], logstore=log_target[1])
                    if log_target is not None else None
                ),
                tags=tags,
                resource_group_id=args.get("resource_group_id"),
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
            self.trigger_url = self.trigger.http_trigger.apply(_public_url)
        else:
            # FC 2.0 takes the archive as a file: written content-addressed under the build
            # directory of the consuming program (never inside the installed package).
            archive_path = packaging.write_archive(
                self.archive, Path(args.get("build_dir") or packaging.DEFAULT_BUILD_DIR)
            )
            self.service = alicloud.fc.Service(
                f"{name}-service",
                name=f"{function_name}-service",
                description="Service of the MNS callback function.",
                role=self.role.arn,
                internet_access=True,
                log_config=(
                    alicloud.fc.ServiceLogConfigArgs(project=log_target[0], logstore=log_target[1])
                    if log_target is not None else None
                ),
                tags=tags,
                opts=after_grants,
            )
            self.function = alicloud.fc.Function(
                f"{name}-function",
                service=self.service.name,
                name=function_name,
                description="Reports MNS-pushed task tokens back to Serverless Workflow.",
                handler=HANDLER_FC2,
                runtime=args["runtime"],
                # As written: relative to the working directory, where Pulumi runs the program.
                filename=archive_path.as_posix(),
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
                args["account_id"], region, self.service.name, self.function.name, self.trigger.id
            ).apply(lambda v: fc2_trigger_url(v[0], v[1], v[2], v[3]))

        self.role_arn = self.role.arn
        self.register_outputs(
            {"functionName": self.function_name, "triggerUrl": self.trigger_url, "roleArn": self.role_arn}
        )
