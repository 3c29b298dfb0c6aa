.PHONY: setup demo test check bench fmt
setup: ; ./dev setup
demo: ; ./dev demo
test: ; ./dev test
check: ; ./dev check
bench: ; ./dev bench
fmt: ; ./dev fmt
