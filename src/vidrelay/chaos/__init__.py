"""The chaos run (`make chaos`): proves under faults that nothing is lost and nothing happens twice.

It starts `vidrelay local` as a child process (short upstream retry budgets, the webhook schedule shrunk, no rate
limit, and the router delivering a share of SQS messages twice), creates N jobs over every model of the catalog
with 16 concurrent clients — a fifth of them with an injected upstream fault, some replayed with their
Idempotency-Key — every one with a `webhook_url` to a receiver that refuses or drops about half its requests. Once
every job is terminal and every delivery settled, it prints one JSON document of counters that must all be zero:

- lost: created jobs not terminal in time (or gone); creates_unanswered: a create that never got a 200;
- unexpected_outcomes: a job that did not end as planned (transient faults: completed; persistent: failed with
  the fault's code);
- double_submissions: upstream tasks beyond one per job (the simulator's /_sim/tasks);
- s3_duplicate/missing/mismatching/stray_objects: the results bucket holds exactly one object per completed
  job, of the Video object's size and SHA-256, that a player opens at its width and height;
- terminal_events_not_delivered: a terminal event the receiver never accepted, or got under several
  webhook-ids; unstable_webhook_ids, duplicate_deliveries (an event accepted twice), bad_signatures;
- api_5xx, api_transport_errors: any 5xx or broken connection from the API;
- ledger_disagreements: `GET /v1/videos/{id}/deliveries` differs from what the receiver saw;
- replay_mismatches: a replayed create answered another job.
"""
