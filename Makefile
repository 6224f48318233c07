# make demo : venv + install; the bundled inpaint-128 model restores a sample photo (faces
#             detected, eyes masked, pasted back) before anything is trained; then prepare the
#             bundled sample faces, train the CPU quickstart, evaluate it, restore one face
# make test : venv + install with test extras + pytest
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.facegan-installed
RUN     = runs/quickstart_inpaint

.PHONY: demo test install clean-demo gpu-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/facegan models
	$(BIN)/facegan restore facegan/assets/sample_faces/deepface/img11.jpg --checkpoint inpaint-128 \
		--mask eyes --compare --out runs/demo_bundled
	$(BIN)/facegan prepare sample --out data/sample
	@if [ -f $(RUN)/checkpoints/last.pt ]; then \
		echo "$(RUN) is already trained (make clean-demo to start over)"; \
	else \
		$(BIN)/facegan train recipes/quickstart_inpaint.yaml --out $(RUN); \
	fi
	$(BIN)/facegan eval $(RUN) --mask eyes
	$(BIN)/facegan restore data/sample/examples/test_001.png --aligned --task inpaint --mask eyes --compare \
		--checkpoint $(RUN) --out $(RUN)/restored

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean-demo:
	rm -rf $(RUN)

# The checks only a GPU can answer (AMP, throughput, MFU, memory, restore latency): one JSON.
gpu-check: $(STAMP)
	$(BIN)/python scripts/gpu_check.py --out gpu_check.json
