# shape_router: PGXS build
EXTENSION = shape_router
MODULE_big = shape_router
OBJS = \
	src/shape_router.o \
	src/catalog.o \
	src/validate.o \
	src/compile.o \
	src/eval.o \
	src/predindex.o \
	src/router.o \
	src/sqlfuncs.o \
	src/shapestate.o \
	src/jsonout.o \
	src/plugin.o

DATA = sql/shape_router--0.1.sql
PGFILEDESC = "shape_router - route logical decoding changes to shapes"

REGRESS = registration refusals privileges matching_types null_semantics predindex decoding_records decoding_options decoding_shapes decoding_ddl decoding_churn decoding_errors
REGRESS_OPTS = --inputdir=. --outputdir=.


SHLIB_LINK += -lxxhash -lroaring



PG_CFLAGS += -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Rebuild objects when any module header changes.
$(OBJS): $(wildcard src/*.h)

# TAP tests (test/t) need an unprivileged user when run as root: see test/tap.sh.
.PHONY: tapcheck
tapcheck:
	bash test/tap.sh
