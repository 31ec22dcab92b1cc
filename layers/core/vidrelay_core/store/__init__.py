"""The DynamoDB adapter: the only code that touches DynamoDB, one module per kind of record.

One table (template.yaml, JobsTable) holds every record, told apart by key prefix:
  jobs.py      JOB#<video id> / JOB                  a job; carries the sparse `inflight` index keys while in flight
               IDEM#<tenant>#<key> / IDEM            an Idempotency-Key record (24 h)
  tenants.py   TENANT#<tenant> / PROFILE             a tenant's profile (webhook signing secret, budget, rate limit)
               KEY#<sha256 of api key> / KEY         an API key's hash and its tenant
               KEYS / KEY#<key id>                   the key registry `vidrelay keys` lists and revokes
  counters.py  TENANT#<tenant> / USAGE#<day>#<model> estimated spend and job count per day and model
               TENANT#<tenant> / SPEND#<month>       the month's spend, for the budget
               TENANT#<tenant> / RATE#<minute>       job creations in one minute, for the rate limit (TTL)
               TENANT#<tenant> / TESTS#<minute>      endpoint test sends in one minute (TTL)
  webhooks.py  TENANT#<tenant> / ENDPOINT#<we_id>    a webhook endpoint
               JOB#<video id> / DELIVERY#<evt>#<tgt> one webhook delivery: state, schedule, every attempt
  intake.py    INTAKE#<bucket>/<key>#<etag> / SIDECAR  how one version of an intake sidecar was used (TTL)
All of them share one codec (codec.py). The stores raise typed errors (errors.py) and write no user-facing prose:
the use cases above them decide what a client is told.
"""
