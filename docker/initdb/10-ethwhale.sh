#!/usr/bin/env bash
# docker/initdb/10-ethwhale.sh - one-time set-up of an ethwhale_fdw database.
#
# The postgres image runs it from /docker-entrypoint-initdb.d on the first
# start with an empty data directory, connected to its temporary server.
# test/docker/check runs the same file against a throwaway cluster.
#
# Environment:
#   POSTGRES_USER          [postgres] the superuser
#   POSTGRES_DB            [ethwhale] the database (= the image's cron.database_name)
#   ETHWHALE_ENDPOINT      [http://geth:8545/graphql] the node's GraphQL URL
#   ETHWHALE_REFRESH_CRON  [*/10 * * * *] when ethwhale.refresh() runs (pg_cron)
#
# The refresh is scheduled with ethwhale.schedule_refresh(), which the
# extension provides from issue 5 (sync and whale views) on.
set -euo pipefail

psql -v ON_ERROR_STOP=1 -X -q \
	--username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-ethwhale}" \
	-v endpoint="${ETHWHALE_ENDPOINT:-http://geth:8545/graphql}" \
	-v refresh_cron="${ETHWHALE_REFRESH_CRON:-*/10 * * * *}" <<'EOSQL'
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION IF NOT EXISTS ethwhale_fdw;
CREATE SERVER geth FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint :'endpoint');
CREATE USER MAPPING FOR CURRENT_USER SERVER geth;
IMPORT FOREIGN SCHEMA ethereum FROM SERVER geth INTO public;
SELECT ethwhale.schedule_refresh(:'refresh_cron') AS refresh_job;
EOSQL
echo "ethwhale_fdw: server geth -> ${ETHWHALE_ENDPOINT:-http://geth:8545/graphql}, refresh '${ETHWHALE_REFRESH_CRON:-*/10 * * * *}'"
