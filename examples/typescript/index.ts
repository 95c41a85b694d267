// Two mns-callback-flow patterns from TypeScript, through the SDK that
// `pulumi package add <this repository>/component_provider` generates.
import * as pulumi from "@pulumi/pulumi";
import * as callbacks from "@pulumi/mns-callback-flow";

const orders = new callbacks.CallbackPattern("orders");

const billing = new callbacks.CallbackPattern("billing", {
    taskTimeoutSeconds: 600,
    notifyContentFormat: "XML",
    taskRetry: [{ errors: ["FnF.TaskTimeout"], intervalSeconds: 5, maxAttempts: 2 }],
    taskCatch: [{ errors: ["FnF.TaskTimeout"], status: "timeout" }],
    tags: { team: "billing" },
    // Work code of your own is Python: a directory beside this program and module:function in it.
    workDir: "work",
    work: "pricing.quote:work",
});

export const ordersFlowName: pulumi.Output<string> = orders.flowName;
export const ordersTopicName = orders.topicName;
export const billingFlowName = billing.flowName;
export const billingTriggerUrl = billing.triggerUrl;
