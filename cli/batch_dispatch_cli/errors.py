"""Errors the operator reads: one line that says what to do, exit code 2, nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    TokenRetrievalError,
)

BAD_INPUT = 2  # bad input or an unusable target: nothing was changed
ATTENTION = 1  # the command ran, and what it found needs a person (or the job it followed failed)

_CREDENTIAL_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"}
)
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})


class OperatorError(click.ClickException):
    """Bad input or a target the command cannot use: printed as one line, exit code 2."""

    exit_code = BAD_INPUT


@contextmanager
def aws_errors() -> Iterator[None]:
    """AWS's answers about credentials, region and access, as one line saying what to do."""
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError, TokenRetrievalError) as error:
        raise OperatorError(
            f"no usable AWS credentials ({type(error).__name__}): set AWS_PROFILE (and run "
            "`aws sso login` for an SSO profile) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ) from None
    except NoRegionError:
        raise OperatorError(
            "no AWS region: pass --region, or set AWS_REGION or the profile's region"
        ) from None
    except EndpointConnectionError as error:
        raise OperatorError(
            f"cannot reach {error.kwargs.get('endpoint_url')}: check the region and network"
        ) from None
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _CREDENTIAL_CODES:
            raise OperatorError(
                f"AWS refused the credentials ({code}): refresh them (`aws sso login`, a new session token)"
            ) from None
        if code in _DENIED_CODES:
            operation = error.operation_name
            raise OperatorError(
                f"access denied for {operation}: use credentials allowed to operate this stack"
            ) from None
        raise
