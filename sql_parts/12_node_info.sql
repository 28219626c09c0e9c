-- ---------------------------------------------------------------- node info

-- ethwhale.node_chain_id(server): the chain id (EIP-155) of the node of the
-- ethwhale_fdw server SERVER, asked over the server's API (GraphQL
-- { chainID }, JSON-RPC eth_chainId) with its options, retries and errors,
-- as a scan asks; the caller needs USAGE on the server (nodeinfo.c).
CREATE FUNCTION ethwhale.node_chain_id(server name)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ethwhale_node_chain_id'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION ethwhale.node_chain_id(name)
  IS 'chain id of the server''s node (GraphQL chainID or JSON-RPC eth_chainId)';
