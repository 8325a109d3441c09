"""The pipeline on AWS: plain functions behind the Lambda handlers in functions/.

Standard library and boto3 only, so the Lambda layer needs nothing else
besides Powertools (which only the handlers use).
"""
