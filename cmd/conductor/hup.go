package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// hupHook is one thing SIGHUP makes serve do.
type hupHook struct {
	name string
	run  func() error
}

// hupHooks are what SIGHUP makes serve do, in order: reopen the audit log (logrotate's rename,
// then kill -HUP); a configuration reload joins them here. Every hook runs even when an earlier
// one failed; failures are logged and serve goes on.
type hupHooks struct{ hooks []hupHook }

func (h *hupHooks) add(hook hupHook) { h.hooks = append(h.hooks, hook) }

// listen runs the hooks on every SIGHUP until stop is called. Without hooks it does not catch
// SIGHUP at all (its default action, ending the process, stays).
func (h *hupHooks) listen(log *slog.Logger) (stop func()) {
	if len(h.hooks) == 0 {
		return func() {}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			select {
			case <-sig:
			case <-done:
				return
			}
			for _, hook := range h.hooks {
				if err := hook.run(); err != nil {
					log.Error("SIGHUP", "hook", hook.name, "err", err)
					continue
				}
				log.Info("SIGHUP", "hook", hook.name)
			}
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
		<-ended
	}
}
