"""Before `make deploy`: what would fail the deployment, or its first run, said before anything is made.

    python -m stedi.aws.preflight --stack NAME [--lake-formation-granted]

`make deploy` runs it with the SAM tools' Python (boto3 is all it needs). It checks:

- the stack name: every resource name derives from it (two stacks, dev and prod,
  live side by side in one account and Region), and Glue and Athena take it as a
  database name with its hyphens made underscores, which Glue stores in lower case;
- AWS credentials and a Region;
- Lake Formation. The template grants IAM permissions only. That is all a Glue
  or Athena caller needs while Lake Formation keeps its initial settings, "Use
  only IAM access control" for new databases and tables
  (https://docs.aws.amazon.com/lake-formation/latest/dg/change-settings.html).
  If an administrator changed them, the stack's new databases are governed by
  Lake Formation grants that the template does not make, and the first run
  fails on access denied. Deploy anyway with --lake-formation-granted once a
  data lake administrator has granted the stack's roles (outputs *RoleArn) their
  permissions on its databases.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

# A CloudFormation stack name, lower case (Glue lower-cases database names), short enough for the
# state machine "<stack>-pipeline" (80 characters at most:
# https://docs.aws.amazon.com/step-functions/latest/apireference/API_StateMachineListItem.html).
STACK_NAME = re.compile(r"^[a-z][a-z0-9-]{0,70}$")
IAM_ONLY = {"Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}, "Permissions": ["ALL"]}


def stack_name_problem(name: str) -> str | None:
    if STACK_NAME.match(name):
        return None
    return (f"stack name {name!r}: use lower-case letters, digits and hyphens, starting with a letter, at most "
            "71 characters (every name in the stack derives from it, Glue database names included)")


def credentials_problem(session: Any) -> str | None:
    if session.region_name is None:
        return "no AWS Region: set AWS_DEFAULT_REGION, or a region in your AWS profile (`aws configure`)"
    try:
        session.client("sts").get_caller_identity()
    except Exception as error:  # no credentials, expired ones, or no network: all stop a deploy
        return f"AWS credentials do not work ({error}): run `aws configure`, or set AWS_PROFILE"
    return None


def lake_formation_problem(lakeformation: Any) -> str | None:
    try:
        settings = lakeformation.get_data_lake_settings()["DataLakeSettings"]
    except lakeformation.exceptions.AccessDeniedException:
        return ("cannot read the Lake Formation settings (lakeformation:GetDataLakeSettings is denied): ask a data "
                "lake administrator whether new databases use only IAM access control")
    governed = [key for key in ("CreateDatabaseDefaultPermissions", "CreateTableDefaultPermissions")
                if IAM_ONLY not in settings.get(key, [])]
    if not governed:
        return None
    return (f"Lake Formation governs new databases and tables in this account and Region ({', '.join(governed)} "
            "do not grant ALL to IAM_ALLOWED_PRINCIPALS), and the template grants IAM permissions only: the first "
            "run would fail on access denied. Either let a data lake administrator restore \"Use only IAM access "
            "control\" for new databases and tables, or deploy with --lake-formation-granted and have them grant "
            "the stack's roles their Lake Formation permissions on its databases (docs/aws.md)")


def problems(stack: str, session: Any, *, lake_formation_granted: bool = False) -> list[str]:
    found = [problem for problem in (stack_name_problem(stack), credentials_problem(session)) if problem]
    if not found and not lake_formation_granted:
        found += [problem for problem in [lake_formation_problem(session.client("lakeformation"))] if problem]
    return found


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(prog="python -m stedi.aws.preflight", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--lake-formation-granted", action="store_true",
                        help="the stack's roles have been granted Lake Formation permissions")
    args = parser.parse_args(argv)
    found = problems(args.stack, boto3.session.Session(), lake_formation_granted=args.lake_formation_granted)
    for problem in found:
        print(f"preflight: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
