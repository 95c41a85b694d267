"""A second Pulumi project that calls the mns-callback-flow pattern's flow.

It reads the pattern's stack outputs (``patternStack`` =
``<org>/mns-callback-flow/<stack>``) and creates a RAM role allowed only to
start and describe executions: ``fnf:StartExecution`` and
``fnf:DescribeExecution`` on Resource "*", the only grant that works, as RAM
cannot scope them to one flow (mns_callback_flow.policies.UNSCOPABLE_ACTIONS).
"""

# Modules beside this file: the Pulumi program's folder is on its path.
import caller_access
import pulumi
from caller_stack import FlowCaller

config = pulumi.Config()
pattern = pulumi.StackReference(caller_access.check_stack_name(config.require("patternStack")))

# The flow to start, its region and the account to trust: require, not get.
flow_name = pattern.require_output("flowName")
region = pattern.require_output("region")
account_id = pattern.require_output("accountId")

caller = FlowCaller("caller", {
    "flow_name": flow_name,
    "region": region,
    "account_id": account_id,
    "trusted_principal": config.get("trustedPrincipal"),
    "role_name": config.get("roleName"),
})

pulumi.export("flowName", flow_name)
pulumi.export("region", region)
pulumi.export("roleArn", caller.role_arn)
pulumi.export("assumeRoleCommand", caller.assume_role_command)
pulumi.export("startCommand", caller.start_command)
