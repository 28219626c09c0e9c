# ethwhale_fdw - PostgreSQL foreign-data wrapper for Ethereum nodes (JSON-RPC and GraphQL)
#
#   make && make install          build and install with PGXS
#   make installcheck             pg_regress (needs the test servers: use test/run)

MODULE_big = ethwhale_fdw
OBJS = ethwhale_fdw.o planner.o catalog.o option.o deparse.o scanplan.o bounds.o scan.o chunk.o account.o \
	pipeline.o request.o graphql.o jsonrpc.o rpcanswers.o rpcerrors.o transport.o jsonmem.o jsonfast.o decode.o hexnum.o prices.o \
	nodeinfo.o
PGFILEDESC = "ethwhale_fdw - foreign-data wrapper for Ethereum nodes"

EXTENSION = ethwhale_fdw
# $(srcdir): the source tree, also in a VPATH build (pg_buildext, debian/rules)
EXTVERSION = $(shell sed -n "s/^default_version = '\\(.*\\)'/\\1/p" $(srcdir)/ethwhale_fdw.control)
PG_CPPFLAGS = -DEW_VERSION='"$(EXTVERSION)"'
# The install script of the current version is built from sql_parts/ (see
# the rule at the end); released scripts and upgrades are kept as they are.
DATA = ethwhale_fdw--0.1.sql ethwhale_fdw--0.1--0.2.sql ethwhale_fdw--0.2.sql ethwhale_fdw--0.2--0.3.sql ethwhale_fdw--0.3.sql ethwhale_fdw--0.3--0.4.sql ethwhale_fdw--0.4.sql ethwhale_fdw--0.4--0.5.sql ethwhale_fdw--0.5.sql ethwhale_fdw--0.5--0.6.sql ethwhale_fdw--0.6.sql ethwhale_fdw--0.6--0.7.sql
DATA_built = ethwhale_fdw--$(EXTVERSION).sql

REGRESS = options scan pushdown plan errors tokens security jsonrpc

SHLIB_LINK = -lcurl -ljansson
# Warnings are errors; the -Wno- flags silence what PostgreSQL's own headers
# and callback signatures trigger under -Wextra.
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare -Wno-cast-function-type

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): ethwhale_fdw.h hexnum.h scan.h compat.h
jsonrpc.o rpcanswers.o rpcerrors.o: jsonrpc.h

# sql_parts/NN_*.sql, in order, make the install script of EXTVERSION.
ethwhale_fdw--$(EXTVERSION).sql: $(sort $(wildcard $(srcdir)/sql_parts/*.sql)) $(srcdir)/ethwhale_fdw.control
	{ echo '-- $@: made by make from sql_parts/NN_*.sql (in order); edit those.'; \
	  cat $(sort $(wildcard $(srcdir)/sql_parts/*.sql)); } > $@
