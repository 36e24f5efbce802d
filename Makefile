# shape_router: PGXS build
EXTENSION = shape_router
MODULE_big = shape_router
OBJS = \
	src/shape_router.o \
	src/catalog.o \
	src/restore.o \
	src/subxact.o \
	src/concurrent.o \
	src/validate.o \
	src/compile.o \
	src/keys.o \
	src/keysel.o \
	src/eval.o \
	src/predindex.o \
	src/router.o \
	src/sqlfuncs.o \
	src/memkey.o \
	src/members.o \
	src/slotdir.o \
	src/invallog.o \
	src/slotmemb.o \
	src/slotstats.o \
	src/statsfuncs.o \
	src/shapecache.o \
	src/shapestate.o \
	src/streammemb.o \
	src/membership/crc32c.o \
	src/membership/keycanon.o \
	src/membership/memb.o \
	src/membership/mpart.o \
	src/membership/membfile.o \
	src/route.o \
	src/jsonout.o \
	src/plugin.o

DATA = sql/shape_router--0.1.sql sql/shape_router--0.1--0.2.sql
PGFILEDESC = "shape_router - route logical decoding changes to shapes"

REGRESS = registration refusals privileges matching_types null_semantics predindex access_paths decoding_records decoding_options decoding_shapes decoding_ddl decoding_churn decoding_errors decoding_catalog decoding_default concurrent monitoring
REGRESS_OPTS = --inputdir=. --outputdir=.
ISOLATION = add_shape_writers add_shapes_writers resync_writers first_rows add_shape_snapshot concurrent_add
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output_iso
EXTRA_CLEAN = test/isolation/output_iso


# xxHash is inlined (XXH_INLINE_ALL): nothing to link
SHLIB_LINK += -lroaring



PG_CFLAGS += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
# The tests (test/run-all.sh, so CI) build with warnings as errors, as pgvector's CI does.
ifdef SR_WERROR
PG_CFLAGS += -Werror
endif

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Rebuild objects when any module header changes.
$(OBJS): $(wildcard src/*.h src/membership/*.h)

# TAP tests (test/t) need an unprivileged user when run as root: see test/tap.sh.
.PHONY: tapcheck
tapcheck:
	bash test/tap.sh
