"""Recording: what the agent saw, decided and did, as MCAP files Foxglove opens and replay reads.

`writer` (the non-blocking recorder), `segments` (rotating files under a cap), `stats`,
`metadata` (what a recording says about itself), `format` (topics, schemas, (de)serialisation),
`foxglove` (message builders), `salvage` (reading damaged files).
"""
