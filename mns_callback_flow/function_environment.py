"""The environment variables the stack gives the callback function.

Pure, so the deployed function (``mns_callback_flow/callback_function.py``) and the local
run (``localcloud/run.py``) set the handler up from one definition; the names
are the handler's fixed interface (docs/design.md, ``function/mns_callback/settings.py``).
"""


def fnf_endpoint(region: str) -> str:
    """The region's public FnF endpoint, https (docs/platform-facts.md: the SDK would guess plain HTTP)."""
    return f"https://{region}.fnf.aliyuncs.com"


def function_environment(
    region: str,
    verify_signature: bool,
    *,
    topic_owner: str,
    topic_name: str,
    notify_content_format: str,
    cert_url_prefixes: tuple[str, ...] = (),
    work: str | None = None,
    endpoint: str | None = None,
) -> dict[str, str]:
    """``FNF_ENDPOINT``, ``MNS_VERIFY_SIGNATURE`` and ``ALIBABA_CLOUD_REGION`` for ``region``,
    and the one topic whose pushes the handler accepts.

    ``MNS_TOPIC_OWNER`` / ``MNS_TOPIC_NAME`` bind the handler to the stack's
    topic (a valid signature proves only that *some* MNS topic pushed:
    function/mns_callback/topic_binding.py); ``MNS_NOTIFY_CONTENT_FORMAT`` is
    the subscription's format, so a push is read only as that format.
    ``MNS_CERT_URL_PREFIXES`` only when prefixes are configured: unset, the
    handler trusts exactly the documented hosts for its region. ``CALLBACK_WORK``
    only when a work function is configured. ``endpoint``
    replaces the region's FnF endpoint (local stand-ins only).
    """
    environment = {
        "FNF_ENDPOINT": endpoint or fnf_endpoint(region),
        "MNS_VERIFY_SIGNATURE": "true" if verify_signature else "false",
        "ALIBABA_CLOUD_REGION": region,
        "MNS_TOPIC_OWNER": topic_owner,
        "MNS_TOPIC_NAME": topic_name,
        "MNS_NOTIFY_CONTENT_FORMAT": notify_content_format,
    }
    if cert_url_prefixes:
        environment["MNS_CERT_URL_PREFIXES"] = ",".join(cert_url_prefixes)
    if work:
        environment["CALLBACK_WORK"] = work
    return environment
