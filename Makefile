# vizlab — the two commands a fresh machine needs are `make demo` and `make test` (see README).
SWIFT_RELEASE := swift build -c release
SWIFT_TEST    := swift test -c release -Xswiftc -enable-testing --disable-swift-testing
VIZLAB        := .build/release/vizlab
export VIZLAB_HOME ?= $(HOME)/.cache/vizlab

.PHONY: setup build test demo bench clean dataset

setup:            ## install system libraries, fetch the weights and the sample photos (idempotent)
	bash scripts/setup

dataset: setup    ## the ~800-image sample corpus for vizlab index (Debian gcompris-qt-data + tuxpaint-stamps-default)
	bash scripts/dataset

build: setup      ## release build (-target-cpu haswell is set in Package.swift)
	$(SWIFT_RELEASE)

test: setup       ## the whole test suite, in release (numeric code is 10-100x slower in debug)
	$(SWIFT_TEST)

demo: build dataset  ## classify the sample photos, render a few pictures, fool the model once, index the corpus, benchmark
	@echo "== vizlab classify (sample photos in $(VIZLAB_HOME)/samples)"
	$(VIZLAB) classify --top 3 $(VIZLAB_HOME)/samples/*.png $(VIZLAB_HOME)/samples/*.jpg
	@echo "== vizlab channel / ideal (short 128-step renders; 512 is the default) -> out/demo"
	$(VIZLAB) channel blocks.8:1,2,3,4 --steps 128 --seed 1 --out out/demo/channels
	$(VIZLAB) ideal --class "tiger cat" --class cat --steps 128 --seed 1 --out out/demo/ideal
	@echo "== vizlab attack: the Pekinese photo made a cat at ε = 4/255, then re-read from disk by vizlab classify"
	$(VIZLAB) attack $(VIZLAB_HOME)/samples/chicky_512.png --target cat --eps 4 --seed 1 --out out/demo/attack
	$(VIZLAB) classify --top 3 out/demo/attack/chicky_512.adv.png
	@echo "== vizlab index: the sample corpus (only new or changed files on a rerun), then top images of three units"
	$(VIZLAB) index $(VIZLAB_HOME)/dataset --db out/demo/examples.sqlite
	$(VIZLAB) top logits:282 --k 8 --db out/demo/examples.sqlite --out out/demo/top/tiger_cat.png
	$(VIZLAB) top logits:483 --k 8 --db out/demo/examples.sqlite --out out/demo/top/castle.png
	$(VIZLAB) top blocks.5:10 --k 8 --patches --db out/demo/examples.sqlite --out out/demo/top/blocks5_10_patches.png
	@echo "== vizlab bench"
	$(VIZLAB) bench --runs 10

bench: build
	$(VIZLAB) bench

clean:
	rm -rf .build
