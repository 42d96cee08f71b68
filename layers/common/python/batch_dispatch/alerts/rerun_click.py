"""SlackActionsFunction's one call: a click on a Rerun button -> the job rerun once -> the alert updated.

Step by step, each refusing what it must:
1. The request must be Slack's: its signature over the raw body, with the app's signing secret (Secrets
   Manager), dated within 5 minutes of the clock. Otherwise the answer is HTTP 401 and nothing else: an
   unverified request's response_url is not trusted with a reply (it could point anywhere).
2. Only our buttons' clicks count: another interaction, or a link button (Slack reports those clicks
   too), is acknowledged and left alone.
3. The clicker must be allowed (alerts/rerun_access.py) by the job's job type's lists, or the stack's
   when it sets none: their Slack user id listed, or they in a listed user group (read with the app's
   bot token; a group that cannot be read refuses the click with a text saying what to check). Finding
   the job type takes a DescribeJobs call and the job catalog's registry (cached).
4. The rerun (submit/rerun.py) keyed on the job id: a refusal (not found, still running, not this
   stack's, nothing failed...) or "already rerun as ..." is answered with an ephemeral text; a rerun
   replaces the alert's buttons with who reran it and the new job.
Slack waits 3 seconds for the HTTP answer: the steps are a few AWS calls, and the reply through the
response_url gets what time is left (Slack takes it for 30 minutes anyway). Logs name the user, the job
and the outcome; never the signing secret, the bot token, the signature or the response_url (it holds a
token).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.alerts import rerun_access, rerun_replies
from batch_dispatch.alerts.rerun_button import ACTION_IDS, RERUN_FAILED_CHILDREN
from batch_dispatch.observability import MetricUnit, logger, metrics, tracer
from batch_dispatch.settings import SlackActionsSettings
from batch_dispatch.slack.interactions import ButtonClick, MalformedRequestError, http_request, parse_click
from batch_dispatch.slack.response_url import respond
from batch_dispatch.slack.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify
from batch_dispatch.slack.user_groups import UserGroupLookupError
from batch_dispatch.slack.webhook import secret_text
from batch_dispatch.submit.rerun import RerunPolicy, RerunRefusedError, rerun

RESPONSE_TIMEOUT_SECONDS = 2.0
RESERVED_SECONDS = 0.5  # of the invocation's time, kept for logging and metrics after the reply


class SigningSecretError(RuntimeError):
    """The signing secret cannot be read: a deployment problem (the secret, or the role's access to it)."""


def http_response(status: int, body: str = "") -> dict[str, Any]:
    """A function URL response (payload format 2.0)."""
    return {"statusCode": status, "headers": {"Content-Type": "text/plain; charset=utf-8"}, "body": body}


@tracer.capture_method(capture_response=False)
def handle(
    event: Any, settings: SlackActionsSettings, lambda_context: LambdaContext | None = None
) -> dict[str, Any]:
    """Answer one request to the function URL (see the module docstring)."""
    try:
        request = http_request(event)
    except MalformedRequestError as error:
        logger.warning("Request refused", extra={"reason": "malformed", "detail": str(error)})
        return http_response(400, "Not a request this function understands.")
    if request.method != "POST":
        return http_response(405, "Slack posts its interactions; nothing else is served here.")
    try:
        verify(
            signing_secret(settings),
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            received_signature=request.headers.get(SIGNATURE_HEADER),
            body=request.body,
        )
    except SignatureError as error:
        metrics.add_metric(name="RerunRefused", unit=MetricUnit.Count, value=1)
        logger.warning("Request refused", extra={"reason": error.reason})
        return http_response(401, f"Refused: {error}")
    try:
        click = parse_click(request.body)
    except MalformedRequestError as error:
        logger.warning("Request refused", extra={"reason": "malformed", "detail": str(error)})
        return http_response(400, "Not a Slack interaction this function understands.")
    if click is None or click.action_id not in ACTION_IDS:
        logger.info("Slack interaction ignored", extra={"action_id": click.action_id if click else None})
        return http_response(200)
    logger.append_keys(job_id=click.value, user_id=click.user_id, action_id=click.action_id)
    answer_click(click, settings, lambda_context)
    return http_response(200)


def answer_click(
    click: ButtonClick, settings: SlackActionsSettings, lambda_context: LambdaContext | None
) -> None:
    """Rerun the job if the clicker may, and tell them (and the channel) how it went."""
    try:
        job = rerun_access.job_to_check(click.value, settings)
        allowed = rerun_access.allowed_for_job(job, settings)
    except Exception:  # not knowing the job type's lists refuses the click: they may be narrower
        logger.exception("Rerun access lists unavailable")
        request_id = str(getattr(lambda_context, "aws_request_id", "") or "unknown")
        reply(click, rerun_replies.failed(request_id), lambda_context)
        raise  # the function's Errors alarm sees it
    if allowed.job_type:
        logger.append_keys(allowed_by_job_type=allowed.job_type)
    seconds = lookup_seconds(settings, lambda_context)
    verdict = rerun_access.check(click.user_id, settings, seconds=seconds, allowed=allowed)
    if verdict.failure is not None and not verdict.allowed:
        log_lookup_failure(verdict.failure, settings)
        reply_text = rerun_replies.lookup_failed(str(verdict.failure))
        refuse(click, "group_lookup_failed", reply_text, lambda_context)
        return
    if not verdict.allowed:
        reply_text = rerun_replies.not_allowed(click.user_id, allowed.job_type, nobody=allowed.nobody)
        refuse(click, "not_allowed", reply_text, lambda_context)
        return
    logger.append_keys(allowed_via=verdict.via)
    policy = RerunPolicy(
        stack_name=settings.stack_name,
        idempotency_table_name=settings.idempotency_table_name,
        manifest_prefix=settings.manifest_prefix,
    )
    try:
        outcome = rerun(
            click.value,
            policy,
            failed_children_only=click.action_id == RERUN_FAILED_CHILDREN,
            requested_by=click.user_id,
            lambda_context=lambda_context,
            described=job,
        )
    except RerunRefusedError as error:
        refuse(click, error.reason, rerun_replies.refused(str(error)), lambda_context)
        return
    except Exception:
        logger.exception("Rerun failed")
        request_id = str(getattr(lambda_context, "aws_request_id", "") or "unknown")
        reply(click, rerun_replies.failed(request_id), lambda_context)
        raise  # the function's Errors alarm sees it
    if outcome.duplicate:
        reply(click, rerun_replies.already_rerun(outcome), lambda_context)
        return
    reply(click, rerun_replies.rerun_done(click.message, outcome, click.user_id), lambda_context)


def lookup_seconds(settings: SlackActionsSettings, lambda_context: LambdaContext | None) -> float:
    """Time for user group lookups: the setting, less what the invocation cannot spare."""
    seconds = settings.slack_api_timeout_seconds
    if lambda_context is not None:
        left = lambda_context.get_remaining_time_in_millis() / 1000 - RESERVED_SECONDS
        seconds = min(seconds, left - RESPONSE_TIMEOUT_SECONDS)
    return max(seconds, 0.0)


def log_lookup_failure(failure: UserGroupLookupError, settings: SlackActionsSettings) -> None:
    """A setting to fix is an error in the logs; Slack being slow or rate limiting, a warning."""
    log = logger.warning if failure.transient else logger.error
    log(
        "Slack user group lookup failed",
        extra={
            "reason": failure.reason,
            "group_id": failure.group_id,
            "slack_api_url": settings.api_url,
            "bot_token_secret_name": settings.slack_bot_token_secret_name,
            "detail": str(failure),
        },
    )


def refuse(
    click: ButtonClick, reason: str, message: dict[str, Any], lambda_context: LambdaContext | None
) -> None:
    metrics.add_metric(name="RerunRefused", unit=MetricUnit.Count, value=1)
    logger.info("Rerun refused", extra={"reason": reason})
    reply(click, message, lambda_context)


def reply(click: ButtonClick, message: dict[str, Any], lambda_context: LambdaContext | None) -> None:
    timeout = RESPONSE_TIMEOUT_SECONDS
    if lambda_context is not None:
        left = lambda_context.get_remaining_time_in_millis() / 1000 - RESERVED_SECONDS
        timeout = max(min(timeout, left), 0.1)
    respond(click.response_url, message, timeout_seconds=timeout)


def signing_secret(settings: SlackActionsSettings) -> str:
    """The Slack app's signing secret (cached like the webhook secrets; never logged)."""
    name = settings.slack_signing_secret_name
    try:
        text = secret_text(name, max_age=settings.slack_secret_max_age_seconds)
    except GetParameterError:
        raise SigningSecretError(
            f"Cannot read the Slack signing secret {name}: check that it exists and that the function may "
            "call secretsmanager:GetSecretValue on it"
        ) from None
    if not text:
        raise SigningSecretError(f"The Slack signing secret {name} is empty: store the app's signing secret")
    return text
