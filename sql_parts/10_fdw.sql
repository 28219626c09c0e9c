-- ---------------------------------------------------------------- the wrapper

CREATE FUNCTION ethwhale_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION ethwhale_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER ethwhale_fdw
  HANDLER ethwhale_fdw_handler
  VALIDATOR ethwhale_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER ethwhale_fdw
  IS 'Ethereum blocks and transactions from a node''s GraphQL endpoint (EIP-1767)';

-- Everything else of the extension lives in its own schema.
CREATE SCHEMA ethwhale;

