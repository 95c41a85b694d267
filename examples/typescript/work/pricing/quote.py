"""The billing pattern's work: runs in the callback function, beside the handler."""


def work(message_body, notification):
    """What the flow resumes with: ``ReportTaskSucceeded``'s Output."""
    return {"status": "quoted", "order": message_body}
