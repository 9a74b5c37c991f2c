# memvisor - build, run, test.
#
#   make run       build, then run the embedded default scenario
#   make test      build and run the unit tests (ends with "N passed, N failed")
#   make torture   the concurrency torture tests
#   make sanitize  unit + torture tests under ASan+UBSan, torture under TSan
#   make bench     the benchmarks, each figure beside its floor
#   make format    clang-format every source file (check-format: verify)
#   make guest     the real test guest for QEMU (build/guest: Debian's cloud
#                  kernel, an initramfs with guest/linux/mvguest.c as /init)
#
# SAN=asan or SAN=tsan builds into build-asan/ or build-tsan/; BUILDDIR=dir
# picks another build directory.  TRACE=1 builds into build-trace/ with the
# per-page history of src/trace.c (debugging only: slower, more memory).
# DEBUG=1 builds into build-debug/ with the invariants of src/invariant.h
# (MV_ASSERT, pmap_assert_locked) executing; the sanitizer builds run them
# too.

CC      ?= cc
SAN     ?=
PKGS    := liblz4 libzstd libxxhash inih libcjson cmocka ncursesw libmicrohttpd

ifeq ($(SAN),asan)
BUILD   := $(or $(BUILDDIR),build-asan)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DMV_DEBUG
OPT     := -O1
else ifeq ($(SAN),tsan)
BUILD   := $(or $(BUILDDIR),build-tsan)
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer -DMV_DEBUG
OPT     := -O1
else ifeq ($(TRACE),1)
BUILD   := $(or $(BUILDDIR),build-trace)
SANFLAGS := -DMV_TRACE -Wl,--wrap=ioctl,--wrap=madvise,--wrap=syscall
OPT     := -O2
else ifeq ($(DEBUG),1)
BUILD   := $(or $(BUILDDIR),build-debug)
SANFLAGS := -DMV_DEBUG
OPT     := -O1
else
BUILD   := $(or $(BUILDDIR),build)
SANFLAGS :=
OPT     := -O2
endif

WARN := -Wall -Wextra -Werror -Wformat=2 -Winit-self -Wmissing-declarations \
	-Wmissing-prototypes -Wnested-externs -Wno-system-headers \
	-Wold-style-definition -Wredundant-decls -Wsign-compare \
	-Wstrict-prototypes -Wundef -Wvolatile-register-var -Wwrite-strings \
	-Wno-format-nonliteral -Wshadow

CFLAGS  ?= $(OPT) -g
ALLCFLAGS := $(CFLAGS) $(WARN) $(SANFLAGS) -std=gnu11 -D_GNU_SOURCE -pthread \
	-Iinclude -Isrc -Iguest -Itools -Ibench -MMD -MP
PKGCFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKGLIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS  = $(PKGLIBS) -lm -pthread $(SANFLAGS)

LIB_SRC   := $(sort $(wildcard src/*.c))
GUEST_SRC := $(sort $(wildcard guest/*.c))
# tools/preload.c is the LD_PRELOAD library, never part of the binary
PRELOAD_SRC := tools/preload.c
TOOL_SRC  := $(filter-out $(PRELOAD_SRC),$(sort $(wildcard tools/*.c) $(wildcard bench/*.c)))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
TORT_SRC  := $(sort $(wildcard tests/torture_*.c))
TEST_HELP := $(sort $(wildcard tests/helper_*.c))

LIB       := $(BUILD)/libmemvisor.a
GUESTLIB  := $(BUILD)/libmvguest.a
BIN       := $(BUILD)/memvisor
TESTS     := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TORTURES  := $(TORT_SRC:tests/%.c=$(BUILD)/tests/%)
# libmemvisor-preload.so (docs/VMM.md): the engine and the interposers,
# position independent, in build/pic/; not in sanitizer builds (a
# sanitized library cannot be preloaded into an unsanitized QEMU)
PRELOAD   := $(if $(SAN),,$(BUILD)/libmemvisor-preload.so)
PRELOAD_WRAP := -Wl,--wrap=mmap,--wrap=mmap64,--wrap=madvise,--wrap=munmap

.SECONDARY:
.PHONY: all deps run test torture sanitize bench format check-format clean guest
.DEFAULT_GOAL := all

# The real test guest is the same for every build variant, so it lives in
# build/guest whatever BUILD is; tools/qemu.c finds it there by default.
GUESTDIR     := build/guest
GUEST_KERNEL := $(GUESTDIR)/kernel/version
GUEST_INIT   := $(GUESTDIR)/mvguest
GUEST_INITRD := $(GUESTDIR)/initrd.img

all: deps $(BIN) $(TESTS) $(TORTURES) $(PRELOAD) guest

deps:
	@scripts/deps.sh

$(BUILD)/%.o: %.c | deps
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALLCFLAGS) $(PKGCFLAGS) -c $< -o $@

$(BUILD)/pic/%.o: %.c | deps
	@mkdir -p $(dir $@)
	@echo "  CC      $< (pic)"
	@$(CC) $(ALLCFLAGS) -fPIC $(PKGCFLAGS) -c $< -o $@

$(BUILD)/libmemvisor-preload.so: $(PRELOAD_SRC:%.c=$(BUILD)/pic/%.o) \
		$(LIB_SRC:%.c=$(BUILD)/pic/%.o) tools/preload.map
	@echo "  LINK    $@"
	@$(CC) $(ALLCFLAGS) -shared -fPIC -o $@ $(filter %.o,$^) \
		-Wl,--version-script=tools/preload.map $(PRELOAD_WRAP) \
		-Wl,-z,defs $(LDLIBS) -ldl

$(LIB): $(LIB_SRC:%.c=$(BUILD)/%.o)
	@rm -f $@
	@ar rcs $@ $^

$(GUESTLIB): $(GUEST_SRC:%.c=$(BUILD)/%.o)
	@rm -f $@
	@ar rcs $@ $^

$(BIN): $(TOOL_SRC:%.c=$(BUILD)/%.o) $(GUESTLIB) $(LIB)
	@echo "  LINK    $@"
	@$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_HELP:%.c=$(BUILD)/%.o) $(GUESTLIB) $(LIB)
	@echo "  LINK    $@"
	@$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS)

guest: $(GUEST_INITRD) $(GUEST_KERNEL)

$(GUEST_KERNEL): scripts/guest-kernel.sh | deps
	@scripts/guest-kernel.sh $(GUESTDIR)/kernel

$(GUEST_INIT): guest/linux/mvguest.c | deps
	@mkdir -p $(dir $@)
	@echo "  CC      $< (static, guest)"
	@$(CC) -static -O2 $(WARN) -std=gnu11 -D_GNU_SOURCE -o $@ $<

$(GUEST_INITRD): $(GUEST_INIT) $(GUEST_KERNEL) scripts/guest-initramfs.sh
	@echo "  CPIO    $@"
	@scripts/guest-initramfs.sh $@ $(GUEST_INIT) $(GUESTDIR)/kernel

$(BUILD)/tools/qemu.o $(BUILD)/tests/test_qemu.o $(BUILD)/tests/test_preload_qemu.o \
	$(BUILD)/tests/test_bench_qemu.o: \
	ALLCFLAGS += -DMV_GUEST_DIR='"$(CURDIR)/$(GUESTDIR)"'

run: all
	$(BIN) run

test: all
	@scripts/run-tests.sh $(BUILD) $(TESTS)

torture: all
	@scripts/run-tests.sh $(BUILD) $(TORTURES)

# each run goes on whatever the one before found, so that one failure does
# not hide what the others would find; the status is the worst of them
sanitize:
	@st=0; \
	$(MAKE) SAN=asan test || st=1; \
	$(MAKE) SAN=asan torture || st=1; \
	$(MAKE) SAN=tsan torture || st=1; \
	exit $$st

bench: all
	$(BIN) bench all

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	@bad=0; for f in $$(git ls-files '*.c' '*.h'); do \
		clang-format --dry-run --Werror "$$f" >/dev/null 2>&1 || { echo "needs format: $$f"; bad=1; }; \
	done; exit $$bad

clean:
	rm -rf build build-asan build-tsan build-trace build-debug $(BUILDDIR)

-include $(shell find build* -name '*.d' 2>/dev/null)
