// SPDX-License-Identifier: Apache-2.0
// Client side of tandem-lab-janitor: a detached process that removes the lab's resources.
#pragma once

#include <string>

namespace tandem::lab {

// Starts the janitor (double-forked into its own session so that killing the test's process
// tree does not kill it). Resources registered with add() are removed, newest first, by
// cleanup() or, if this process dies first, by the janitor when its socket closes.
// Kinds: "netns" (its processes are killed, then it is deleted), "mount" (lazy unmount),
// "loop" (detached), "path" (removed recursively). Processes in every registered namespace are
// killed before anything else is removed.
class janitor {
 public:
  janitor();
  ~janitor();
  janitor(const janitor&) = delete;
  janitor& operator=(const janitor&) = delete;

  // Register before creating; forget() when the creation failed, so that a name that turned out
  // to exist already (somebody else's) is never removed.
  void add(const std::string& kind, const std::string& value);
  void forget(const std::string& kind, const std::string& value);
  // Removes everything registered so far and waits until it is gone.
  void cleanup();

 private:
  std::string request(const std::string& msg);
  int fd_ = -1;
};

}  // namespace tandem::lab
