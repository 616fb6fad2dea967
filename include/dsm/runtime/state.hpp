// The runtime of one rank: worker, endpoints, active messages, segments,
// collectives. One instance per process, created by dsm::runtime.
//
// Concurrency: with a progress thread, message handlers run on it under the
// worker lock; everything here that handlers touch (segment slots, the
// remote-key cache) is touched by the program's thread under that lock too,
// and no wait happens while holding it.
#pragma once

#include <dsm/arch/fence.hpp>
#include <dsm/arch/isa.hpp>
#include <dsm/detail/calling_rank.hpp>
#include <dsm/detail/local_segments.hpp>
#include <dsm/detail/packed_runs.hpp>
#include <dsm/detail/rpc_registry.hpp>
#include <dsm/detail/segment_record.hpp>
#include <dsm/error.hpp>
#include <dsm/runtime/bootstrap.hpp>
#include <dsm/runtime/collective_algorithms.hpp>
#include <dsm/runtime/collective_task.hpp>
#include <dsm/runtime/launcher_link.hpp>
#include <dsm/runtime/mailbox.hpp>
#include <dsm/runtime/rank_lock.hpp>
#include <dsm/runtime/memory_limits.hpp>
#include <dsm/runtime/peer_watch.hpp>
#include <dsm/runtime/rpc_service.hpp>
#include <dsm/runtime/settings.hpp>
#include <dsm/runtime/stats.hpp>
#include <dsm/runtime/team_state.hpp>
#include <dsm/transport.hpp>

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsm::detail {

enum message_id : unsigned {
  msg_collective = 1,    // word: sequence, kind << 32 | round, team; payload: u32 signature length, signature, data
  msg_rkey_request = 2,  // word: request id, segment, generation
  msg_rkey_reply = 3,    // word: request id, status, bytes; payload: u64 base + packed rkey
  msg_segment_freed = 4, // word: segment, generation, 0
  msg_free_ack = 5,      // word: segment, generation, 0
  msg_object = 6,        // word: object id, then two words the object defines
  msg_leaving = 7,       // word: how (leaving_finished or leaving_failed), relayed (1: why is another's failure), 0; payload: why
  msg_job_failed = 8,    // word: the failure's category (errc), 0, 0; payload: what failed (a collective mismatch)
  msg_rpc = 9,           // word: call id (0: fire and forget), function key, invoker offset; payload: arguments
  msg_rpc_reply = 10,    // word: call id, status (rpc_ok or 1 + errc), 0; payload: result, or the error's text
  msg_packed_put = 11,   // word: call id, segment << 8 | generation, runs; payload: runs x (offset, bytes), their bytes;
                         // answered by msg_rpc_reply
};

// How many RPC functions this thread is running (collectives are refused
// inside one).
constinit inline thread_local int rpc_body_depth = 0;

// How a rank leaves the job, as it tells its peers.
inline constexpr std::uint64_t leaving_finished = 0;  // after the final barrier: its endpoints close next
inline constexpr std::uint64_t leaving_failed = 1;    // before it: the others cannot go on

struct segment_address {
  std::uint32_t rank;
  std::uint16_t segment;
  std::uint8_t generation;
};

// Where a segment's pages come from: UCX maps fresh ones, or the caller
// mapped them and UCX only registers them.
enum class segment_memory { fresh, caller_mapped };

// An object with its own consistency actions (a shared array's coherence
// policy): released before this rank's writes are published (unlock);
// acquired after others' are (lock); and at a barrier, told before the
// ranks synchronise (a release, and whatever must reach the homes before
// they start afresh) and once every rank has passed (where, e.g.,
// read-only data becomes published).
class sync_participant {
 public:
  virtual void release() = 0;
  virtual void acquire() = 0;
  virtual void before_barrier() = 0;
  virtual void after_barrier() = 0;

 protected:
  ~sync_participant() = default;
};

// A distributed object with a protocol of its own (a caching array's
// coherence engine): messages addressed to its id reach it, on the thread
// that progresses the worker and under the worker lock. It validates
// everything it receives and throws errc::protocol to reject.
class object_endpoint {
 public:
  virtual void on_message(const transport::message_header& header, std::span<const std::byte> payload) = 0;

 protected:
  ~object_endpoint() = default;
};

class runtime_state final : public collective_transport {
  struct local_segment {
    transport::memory_region memory;
    std::uint64_t bytes = 0;
    std::uint8_t generation = 1;  // of the current occupant, or the next one
    bool live = false;
    bool dying = false;  // being freed: no new keys handed out
    std::set<std::uint32_t> holders;  // ranks that may hold its rkey
  };
  struct remote_segment {
    std::uint8_t generation;
    std::uint64_t base;
    std::uint64_t bytes;
    transport::remote_key rkey;
  };

 public:
  explicit runtime_state(const settings& s)
      : settings_(s), worker_(s.progress, multithreaded), messages_(worker_) {
    // Start-up is bounded by DSM_START_TIMEOUT when that is longer: the
    // ranks of a loaded machine start seconds apart.
    worker_.set_timeout(std::chrono::duration<double>(s.start_limit_seconds()));
    register_handlers();
    const auto my_address = worker_.address();
    membership_ = join_job(my_address, worker_.timeout());
    set_calling_rank(static_cast<int>(membership_.rank));
    messages_.set_job(membership_.rank, membership_.ranks);
    launcher_ = std::make_unique<launcher_link>(membership_.rendezvous_fd, worker_);
    // dsmrun learns of every failure it did not announce itself, with the
    // rank to blame: so it can name the rank that stopped answering rather
    // than the first that gave up on it. News of a peer's failure that
    // finds this rank waiting for another names the one it waits for.
    worker_.on_failure([this](errc category, const std::string& text, int culprit) {
      if (launcher_->told_ending() || leaving_.load()) return;
      const int awaited = worker_.awaited_now();
      launcher_->gave_up(category == errc::peer_failure && awaited != transport::no_peer ? awaited : culprit, text);
    });
    {
      auto everyone = std::make_shared<std::vector<std::uint32_t>>(membership_.ranks);
      for (std::uint32_t r = 0; r < membership_.ranks; ++r) (*everyone)[r] = r;
      world_.members = std::move(everyone);
      world_.rank = membership_.rank;
      world_.name = "world";
    }
    // Under threads::multiple, only when the rank lock is free or this
    // thread's (the pending calls are the rank's state).
    // RPCs that arrived run here too, on the program's thread.
    worker_.on_wait([this] {
      if (multithreaded && !the_rank_lock().try_lock()) return;
      advance_pending();
      serve_rpcs();
      if (multithreaded) the_rank_lock().unlock();
    });
    finished_peers_.assign(membership_.ranks, 0);
    gone_peers_.assign(membership_.ranks, 0);
    endpoints_ = std::make_unique<transport::endpoints>(
        worker_, membership_.addresses, membership_.rank,
        [this](std::size_t r, ucs_status_t status) { on_peer_error(r, status); });
    messages_.set_endpoints(endpoints_.get());
    remote_.resize(membership_.ranks);
    worker_.start_progress_thread();
    learn_peers();
    barrier();  // every rank is wired up and listening before anyone returns
    worker_.set_timeout(std::chrono::duration<double>(s.timeout_seconds));
    stats_ = {};
  }

  runtime_state(const runtime_state&) = delete;
  runtime_state& operator=(const runtime_state&) = delete;

  // A clean end: the final barrier, then this rank tells its peers and
  // dsmrun that it finished. Unwinding from an error, or in a failed job,
  // waiting for the other ranks could only hang: this rank tells its peers
  // why it leaves (so that they end at once, under any launcher) and goes.
  ~runtime_state() {
    bool finished = false;
    if (std::uncaught_exceptions() == 0 && !worker_.job_failed()) {
      try {
        barrier();
        finished = true;
      } catch (const std::exception& e) {
        fmt::print(stderr, "dsm: rank {}: final barrier: {}\n", rank(), e.what());
      }
    }
    leave(finished ? leaving_finished : leaving_failed,
          finished ? std::string()
          : worker_.job_failed()
              ? worker_.failure()
              : std::string("its program left dsm::runtime's scope by an exception"));
    if (settings_.stats)
      print_stats(stderr, static_cast<int>(rank()), stats_snapshot());
    worker_.stop_progress_thread();
    graveyard_.clear();
    remote_.clear();
    messages_.set_endpoints(nullptr);
    endpoints_->close_all();
    for (std::size_t id = 0; id < slots_.size(); ++id)
      if (slots_[id].live) local_segments().retire(static_cast<std::uint16_t>(id));
    slots_.clear();
    worker_.watch(-1, {});
    launcher_.reset();
    leave_job(membership_);
    set_calling_rank(no_rank);
  }

  // Whether the job has failed on this rank (a peer died or left early, a
  // wait timed out, the launcher ended it): destructors then take no
  // collective step.
  bool job_failed() const noexcept { return worker_.job_failed(); }

  // Tells every peer (and dsmrun, on a clean end) that this rank leaves,
  // and how; best effort and bounded. Also the path of a process exiting
  // with its runtime still alive (std::exit), through dsm::runtime.
  // A failure learnt from elsewhere (a peer's, or dsmrun's word) is
  // relayed as it is: the peers learn the first cause, not this rank.
  void leave(std::uint64_t how, const std::string& why) noexcept {
    if (leaving_.exchange(true)) return;
    watch_.leave(how == leaving_finished ? peer_watch::said_finished : peer_watch::said_failing);
    try {
      // A peer's failure is passed on as it was told; a mismatch, which
      // every rank is told of, keeps its category too (a peer may hear of
      // this rank's leaving before the mismatch's own notice).
      const bool failed = worker_.job_failed();
      const std::uint64_t mismatch = failed && worker_.failure_category() == errc::collective_mismatch;
      const std::uint64_t relayed = mismatch || (failed && worker_.failure_category() == errc::peer_failure);
      std::vector<std::uint8_t> finished, gone;
      {
        const auto g = worker_.lock();
        finished = finished_peers_;
        gone = gone_peers_;
      }
      // Not to a peer that is gone: the send would never complete.
      for (std::uint32_t r = 0; r < ranks(); ++r)
        if (r != rank() && !gone[r] && !(how == leaving_failed && finished[r]))
          messages_.send(*endpoints_, r, msg_leaving, {0, 0, {how, relayed, mismatch}}, rendezvous::as_bytes(why));
      // Delivered before the endpoints close (a peer must not mistake
      // the close of a finished rank for its death); a failing rank's news
      // is best effort, and a peer that died meanwhile never completes it.
      const transport::deadline until{how == leaving_finished ? std::chrono::milliseconds(1000)
                                                              : std::chrono::milliseconds(200)};
      while (messages_.in_flight() > 0 && !until.passed()) worker_.progress();
    } catch (const std::exception&) {
      // A peer already gone: what it would have been told no longer matters.
    }
    if (how == leaving_finished) launcher_->goodbye();
    launcher_->leaving();
  }

  std::uint32_t rank() const noexcept { return membership_.rank; }
  std::uint32_t ranks() const noexcept { return membership_.ranks; }
  const std::string& bootstrap_method() const noexcept { return membership_.method; }
  // Whether UCX can reach rank r through shared memory: the same host (as
  // far as /dev/shm goes) and a UCX_TLS that leaves UCX its shared-memory
  // transports. What a transfer costs per operation depends on it.
  bool shares_memory_with(std::uint32_t r) const noexcept {
    return peers_[r].host == peers_[rank()].host && transport::transport_list::from_environment().allows_shared_memory();
  }
  transport::worker& worker() noexcept { return worker_; }
  transport::endpoints& endpoints() noexcept { return *endpoints_; }
  transport::active_messages& messages() noexcept { return messages_; }
  runtime_stats& stats() noexcept { return stats_; }
  rank_stats stats_snapshot() const {
    rank_stats s = stats_;
    s.messages_sent = messages_.sent(), s.messages_received = messages_.received(),
    s.messages_rejected = messages_.rejected();
    return s;
  }
  const settings& config() const noexcept { return settings_; }
  // Sequence number the next collective on this rank will carry.
  std::uint64_t next_collective() const noexcept { return world_.next_sequence.load(); }
  team_state& world_team() noexcept { return world_; }
  // The ranks on this rank's host, from what every rank said at start-up.
  std::shared_ptr<team_state> local_team() {
    if (!local_team_) {
      auto members = std::make_shared<std::vector<std::uint32_t>>();
      auto t = std::make_shared<team_state>();
      for (std::uint32_t r = 0; r < ranks(); ++r)
        if (peers_[r].host == peers_[rank()].host) {
          if (r == rank()) t->rank = static_cast<std::uint32_t>(members->size());
          members->push_back(r);
        }
      t->id = team_id_of(~std::uint64_t{0}, peers_[rank()].host);
      t->members = std::move(members);
      t->name = fmt::format("the local team ({} of {} ranks)", t->size(), ranks());
      local_team_ = std::move(t);
    }
    return local_team_;
  }
  // Id the next key request will carry (for tests of forged replies).
  std::uint64_t next_request_id() const noexcept { return next_request_.load(); }

  // ---- ordering and collectives -------------------------------------

  // Objects are numbered by their team's collective sequence at their
  // construction, the same on every member (a world object's id is the
  // sequence itself; a team's is hashed with the team's id). A message for
  // an object that has gone (a late acknowledgement) is dropped and
  // counted; one for an id never registered is rejected.
  std::uint64_t next_object_id(const team_state& t) const noexcept {
    const std::uint64_t seq = t.next_sequence.load();
    return t.id == 0 ? seq : team_id_of(t.id, seq);
  }
  // An object of a team speaks in team ranks: its messages' source ranks
  // arrive translated, and a message from a rank outside the team is
  // rejected.
  void register_object(std::uint64_t id, object_endpoint* o, const team_state& t) {
    const auto g = worker_.lock();
    if (!objects_.emplace(id, registered_object{o, t.id == 0 ? nullptr : t.members}).second)
      throw error(errc::internal, fmt::format("object id {} registered twice", id));
  }
  void retire_object(std::uint64_t id) {
    const auto g = worker_.lock();
    objects_.erase(id);
    retired_objects_.insert(id);
  }
  void send_to_object(std::uint32_t to, std::uint64_t id, std::uint64_t word1, std::uint64_t word2,
                      std::span<const std::byte> payload = {}) {
    send_to_object(world_, to, id, word1, word2, payload);
  }
  // `to`: a rank of the object's team t.
  void send_to_object(const team_state& t, std::uint32_t to, std::uint64_t id, std::uint64_t word1, std::uint64_t word2,
                      std::span<const std::byte> payload = {}) {
    messages_.send(*endpoints_, t.world_rank(to), msg_object, {0, 0, {id, word1, word2}}, payload);
  }
  std::uint64_t late_object_messages() const noexcept { return late_object_messages_.load(); }
  // An object message as it arrived (the handler's work; the coherence
  // fuzzer calls it directly). Worker lock held; errc::protocol rejects.
  void deliver_to_object(const transport::message_header& h, std::span<const std::byte> payload) {
    const auto found = objects_.find(h.word[0]);
    if (found != objects_.end()) {
      const auto& members = found->second.members;
      if (!members) return found->second.endpoint->on_message(h, payload);
      const auto member = std::find(members->begin(), members->end(), h.source_rank);
      if (member == members->end())
        throw error(errc::protocol,
                    fmt::format("message for object {} from rank {}, which is not in its team", h.word[0], h.source_rank));
      transport::message_header in_team = h;
      in_team.source_rank = static_cast<std::uint32_t>(member - members->begin());
      return found->second.endpoint->on_message(in_team, payload);
    }
    if (retired_objects_.count(h.word[0]) != 0) {
      ++late_object_messages_;
      return;
    }
    throw error(errc::protocol, fmt::format("message for object {}, which this rank never created", h.word[0]));
  }

  // ---- RPC ----------------------------------------------------------------

  rpc_service& rpc() noexcept { return rpc_; }
  // Whether rank r runs this rank's binary (the same build of the program):
  // then code is named by its offset in the executable.
  bool same_program(std::uint32_t r) const noexcept { return peers_[r].program == peers_[rank()].program; }

  // Sends a call to `to` (this rank's own waits in its queue like any other).
  void post_rpc(std::uint32_t to, std::uint64_t id, std::uint64_t key, std::uint64_t invoker_offset,
                std::span<const std::byte> arguments) {
    ++stats_.rpcs;
    if (to == rank())
      return rpc_.deposit_request({to, id, key, invoker_offset, {arguments.begin(), arguments.end()}},
                                  [this](bool armed) { worker_.arm_wait_hook(armed); });
    messages_.send(*endpoints_, to, msg_rpc, {0, 0, {id, key, invoker_offset}}, arguments);
  }

  // Runs of a put into one segment of `to`, as one message that the
  // target copies out (detail/packed_runs.hpp's layout); answered like an RPC.
  void post_packed_put(std::uint32_t to, std::uint64_t id, std::uint16_t segment, std::uint8_t generation,
                       std::uint64_t runs, std::span<const std::byte> payload) {
    messages_.send(*endpoints_, to, msg_packed_put, {0, 0, {id, std::uint64_t{segment} << 8 | generation, runs}}, payload);
  }

  // Progresses the worker once and runs what waits for this rank: RPCs
  // that arrived, non-blocking collectives (dsm::progress()).
  void progress() { worker_.progress_and_serve(); }

  // From when dsm::runtime has published this state (the bodies call
  // dsm): until then requests wait (a rank still in its start-up barrier
  // while a faster one already calls it).
  void open_for_rpcs() noexcept { open_for_rpcs_ = true; }

  // Runs the RPCs that arrived (the wait hook, on the program's thread).
  void serve_rpcs() noexcept {
    if (!open_for_rpcs_) return;
    for (rpc_incoming& r : rpc_.take_requests()) serve(r);
    rearm_wait_hook();
  }

 private:
  // The worker's waits run the hook while collectives are pending or
  // requests are queued.
  void rearm_wait_hook() {
    rpc_.rearm(!pending_.empty(), [this](bool armed) { worker_.arm_wait_hook(armed); });
  }

  void serve(rpc_incoming& r) noexcept {
    std::uint64_t status = rpc_ok;
    std::vector<std::byte> result;
    std::string function = "an unknown function";
    try {
      const bool same = same_program(r.source);
      const rpc_entry& e = rpc_registry::instance().find(r.key, r.invoker_offset, same);
      function = e.name;
      ++stats_.rpcs_served;
      ++rpc_body_depth;
      struct leave_body {
        ~leave_body() { --rpc_body_depth; }
      } left;
      result = e.invoke({r.source, same, r.arguments});
      if (result.size() > max_rpc_bytes)
        throw error(errc::invalid_argument,
                    fmt::format("its result takes {} bytes, more than an RPC carries ({})", result.size(), max_rpc_bytes));
    } catch (const error& e) {
      if (e.category() == errc::protocol) messages_.reject("rpc", r.source, e);
      status = 1 + static_cast<std::uint64_t>(e.category());
      result = text_bytes(e.message());
    } catch (const std::exception& e) {
      status = 1 + static_cast<std::uint64_t>(errc::rpc_exception);
      result = text_bytes(fmt::format("{} threw: {}", function, e.what()));
    } catch (...) {
      status = 1 + static_cast<std::uint64_t>(errc::rpc_exception);
      result = text_bytes(fmt::format("{} threw something that is not a std::exception", function));
    }
    if (r.id == 0) {
      // Nobody waits for a fire-and-forget call: its failure ends the job,
      // as an exception escaping a thread ends the process.
      if (status == rpc_ok) return;
      const std::string_view text(reinterpret_cast<const char*>(result.data()), result.size());
      try {
        worker_.fail_job(static_cast<errc>(status - 1),
                         fmt::format("an rpc_ff from rank {} failed on rank {}: {}", r.source, rank(), text),
                         static_cast<int>(rank()));
      } catch (const std::exception& e) {
        fmt::print(stderr, "dsm: rank {}: an rpc_ff from rank {} failed ({}), and ending the job failed: {}\n", rank(),
                   r.source, text, e.what());
      }
      return;
    }
    try {
      if (r.source == rank()) return rpc_.deposit_reply(rank(), r.id, status, result);
      messages_.send(*endpoints_, r.source, msg_rpc_reply, {0, 0, {r.id, status, 0}}, result);
    } catch (const std::exception& e) {
      // The caller is gone: its rank's failure is the job's news.
      fmt::print(stderr, "dsm: rank {}: the reply to rank {}'s rpc was not sent: {}\n", rank(), r.source, e.what());
    }
  }
  // A packed put's runs into this rank's segment: every run inside it,
  // the bytes exactly the runs' (a segment freed meanwhile is stale, any
  // other mismatch malformed).
  void unpack_put(const transport::message_header& h, std::span<const std::byte> payload) {
    if ((h.word[1] >> 24) != 0) throw error(errc::protocol, fmt::format("a packed put to segment word {:#x}", h.word[1]));
    const auto segment = static_cast<std::uint16_t>(h.word[1] >> 8);
    const auto generation = static_cast<std::uint8_t>(h.word[1] & 0xff);
    std::span<const std::byte> data;
    for (const packed_run& r : decode_packed_runs(payload, h.word[2], data)) {
      std::memcpy(local_bytes(segment, generation, r.offset, r.bytes, "packed put"), data.data(), r.bytes);
      data = data.subspan(r.bytes);
    }
  }

  static std::vector<std::byte> text_bytes(std::string_view text) {
    const auto* p = reinterpret_cast<const std::byte*>(text.data());
    return {p, p + text.size()};
  }

 public:
  // Every rank (of team t) has reached this point; no participant hook
  // runs (for collective set-up that must not publish or drop anything).
  void synchronize() { synchronize(world_); }
  void synchronize(team_state& t) { run(barrier_task(begin(t, collective_kind::synchronize, "barrier"))); }

  // ---- collective calls -------------------------------------------------

  // The next collective call on team t: its sequence number, and its
  // signature (the outermost collective operation in progress on this
  // rank, when one is: the signature of a shared_array's construction
  // covers the allocations inside it).
  collective_call begin(team_state& t, collective_kind kind, std::string signature) {
    if (rpc_body_depth > 0) [[unlikely]]
      throw error(errc::contract_violation,
                  fmt::format("{} called inside an RPC's function: the other ranks are not at the same point "
                              "(an RPC runs whenever its target waits); call collectives from the program itself",
                              operations_.empty() ? signature : operations_.front()));
    ++stats_.collectives;
    collective_call c;
    c.via = this;
    c.team = t.id;
    c.seq = t.next_sequence++;
    c.kind = kind;
    c.signature = operations_.empty() ? std::move(signature) : operations_.front();
    if (c.signature.size() > max_signature_bytes) c.signature.resize(max_signature_bytes);
    c.rank = t.rank;
    c.size = t.size();
    c.members = t.members;
    last_begun_ = {c.team, c.seq, c.kind, c.signature};
    expect_nothing_before(last_begun_);
    return c;
  }
  // Drives the collective begun last to its end on this thread
  // (DSM_TIMEOUT bounds each message it waits for).
  void run(collective_task&& t) { run(t); }
  // Under threads::multiple the rank lock is given up while a message is
  // awaited (the rank's other threads go on), and held for every step.
  void run(collective_task& t) {
    const call_id call = last_begun_;
    const std::pair<std::uint64_t, std::uint64_t> driven{call.team, call.seq};
    running_.push_back(driven);
    const auto done_driving = [&] { running_.erase(std::find(running_.begin(), running_.end(), driven)); };
    try {
      while (!t.advance()) {
        collective_awaited* a = t.awaiting();
        const waiting_for_peers away;
        worker_.wait_until([&] { return a->arrived(); }, worker_.timeout(), [&] { return a->describe(); }, a->peer());
      }
    } catch (const error& e) {
      done_driving();
      if (e.category() == errc::peer_failure) explain_lost_peer();
      throw;
    } catch (...) {
      done_driving();
      throw;
    }
    done_driving();
    expect_nothing_more(call);
  }
  // A send of a collective found a peer gone: the reason it left (its
  // leaving notice, the job's failure it was told of, dsmrun's word) may be
  // on its way, and names what happened better than the dead endpoint; it
  // is awaited a moment, and thrown if it comes.
  void explain_lost_peer() {
    const transport::deadline until{std::chrono::milliseconds(300)};
    while (!worker_.job_failed() && !until.passed()) {
      worker_.progress();
      worker_.look_at_watched();
    }
    if (worker_.job_failed()) worker_.throw_failure();
  }

  // A collective in flight while the program does other things (a
  // non-blocking collective's future): advanced during every wait of
  // this rank, so that a peer waiting for its next message is never held
  // up by this rank waiting for something else.
  // Which call a collective is, for the checks of what arrives for it.
  struct call_id {
    std::uint64_t team = 0, seq = 0;
    collective_kind kind = collective_kind::synchronize;
    std::string signature;
  };
  struct pending_collective {
    collective_task task;
    std::exception_ptr failure;
    bool finished = false;
    call_id call;
  };
  void adopt(pending_collective& p) {
    if (pending_.size() >= max_open_collectives)
      throw error(errc::invalid_argument, fmt::format("{} non-blocking collectives in flight on rank {}: wait for some first",
                                                      pending_.size(), rank()));
    p.call = last_begun_;
    pending_.push_back(&p);
    advance(p);
    rearm_wait_hook();
  }
  // Drives p to its end and forgets it; its error, if any, is thrown.
  void finish(pending_collective& p) {
    if (!p.finished) {
      p.finished = true;  // the wait hook leaves it to this driver
      last_begun_ = p.call;
      try {
        run(p.task);
      } catch (...) {
        forget(p);
        throw;
      }
    }
    forget(p);
    if (p.failure) std::rethrow_exception(std::exchange(p.failure, nullptr));
  }
  // As far as what has arrived allows (its error kept for finish()).
  void advance(pending_collective& p) noexcept {
    if (p.finished) return;
    try {
      p.finished = p.task.advance();
      if (p.finished) expect_nothing_more(p.call);
    } catch (...) {
      p.failure = std::current_exception();
      p.finished = true;
    }
  }
  void forget(pending_collective& p) noexcept {
    std::erase(pending_, &p);
    rearm_wait_hook();
  }

  // Collective operations (a shared_array's construction, say) name the
  // collectives inside them while one is in scope: a peer in another
  // operation is found at the first message, named as the operation.
  class operation_scope {
   public:
    operation_scope(runtime_state& rt, std::string signature) : rt_(rt) { rt_.operations_.push_back(std::move(signature)); }
    ~operation_scope() { rt_.operations_.pop_back(); }
    operation_scope(const operation_scope&) = delete;
    operation_scope& operator=(const operation_scope&) = delete;

   private:
    runtime_state& rt_;
  };

  // The job cannot go on (ranks disagree on a collective): every peer is
  // told, with the category and text, and fails its waits at once.
  void fail_everywhere(errc category, const std::string& text, int culprit) {
    if (worker_.job_failed()) return;
    worker_.fail_job(category, text, culprit);
    std::vector<std::uint8_t> gone;
    {
      const auto g = worker_.lock();
      gone = gone_peers_;
    }
    for (std::uint32_t r = 0; r < ranks(); ++r) {
      if (r == rank() || gone[r]) continue;
      try {
        messages_.send(*endpoints_, r, msg_job_failed, {0, 0, {static_cast<std::uint64_t>(category), 0, 0}},
                       rendezvous::as_bytes(text));
      } catch (const std::exception&) {
        // A peer already gone learns nothing more.
      }
    }
  }

  // collective_transport: team ranks to world ranks and the wire format.
  int world_rank_of(const collective_call& c, std::uint32_t member) const override {
    return static_cast<int>(c.members ? (*c.members)[member] : member);
  }
  void post(const collective_call& c, std::uint32_t to, std::uint32_t round, std::span<const std::byte> data) override {
    std::vector<std::byte> payload(sizeof(std::uint32_t) + c.signature.size() + data.size());
    const auto signature_bytes = static_cast<std::uint32_t>(c.signature.size());
    std::memcpy(payload.data(), &signature_bytes, sizeof signature_bytes);
    std::memcpy(payload.data() + sizeof signature_bytes, c.signature.data(), c.signature.size());
    if (!data.empty()) std::memcpy(payload.data() + sizeof signature_bytes + c.signature.size(), data.data(), data.size());
    messages_.send(*endpoints_, static_cast<std::uint32_t>(world_rank_of(c, to)), msg_collective,
                   {0, 0, {c.seq, collective_slot(c.kind, round), c.team}}, payload);
  }
  // Team rank `from`'s message of call c in `round`, if it is here; a
  // peer in another collective at this point (another kind, or another
  // signature) fails the job with errc::collective_mismatch naming both.
  std::optional<std::vector<std::byte>> take(const collective_call& c, std::uint32_t from, std::uint32_t round) override {
    const auto source = static_cast<std::uint32_t>(world_rank_of(c, from));
    auto got = mail_.take({channel::collective, c.seq, collective_slot(c.kind, round), source, c.team});
    if (got) {
      const std::string_view theirs = signature_in(*got);
      if (theirs != c.signature) mismatch(c, source, theirs, c.kind);
      got->erase(got->begin(), got->begin() + static_cast<std::ptrdiff_t>(sizeof(std::uint32_t) + theirs.size()));
      return got;
    }
    const auto other = mail_.other_than(channel::collective, c.seq, source, c.team,
                                        [&](std::uint64_t slot) { return slot >> 32 == static_cast<std::uint64_t>(c.kind); });
    if (other) mismatch(c, source, signature_in(other->second), static_cast<collective_kind>(other->first.second >> 32));
    return std::nullopt;
  }

  // A participant of team t takes its barrier hooks at every barrier of
  // the world and of t; at another team's barrier it is released and
  // acquired, as at a lock.
  void join_sync(sync_participant* p, const team_state& t) { participants_.push_back({p, t.id}); }
  void leave_sync(sync_participant* p) {
    std::erase_if(participants_, [p](const participant& q) { return q.hooks == p; });
  }
  // The two halves of every synchronisation (barrier, lock): release =
  // every array publishes its writes, then every write is at its target;
  // acquire = order later accesses after the hand-over, then every array
  // takes in what others published.
  void release() {
    for (const participant& p : participants_) p.hooks->release();
    fence();
  }
  void acquire() {
    arch::acquire_fence();
    for (const participant& p : participants_) p.hooks->acquire();
  }

  // Every put and atomic this rank posted is complete at its target.
  void fence() {
    endpoints_->flush_written();
    // Packed puts are complete at their targets once answered.
    if (rpc_.writes_unanswered() > 0)
      worker_.wait_until([this] { return rpc_.writes_unanswered() == 0; }, worker_.timeout(),
                         [this] { return fmt::format("{} packed puts' answers (fence)", rpc_.writes_unanswered()); });
    {
      const auto g = worker_.lock();
      if (!graveyard_.empty()) graveyard_.clear();  // nothing in flight can still use those keys
    }
    arch::release_fence();
  }

  // Release (every participant, then fence), a dissemination barrier over
  // active messages, then acquire (fence, every participant's barrier
  // hook): everything any rank wrote before is visible after.
  void barrier() { barrier(world_); }
  void barrier(team_state& t) {
    const auto t0 = transport::clock_type::now();
    const auto takes_part = [&](const participant& p) { return t.id == 0 || p.team_id == t.id; };
    for (const participant& p : participants_) takes_part(p) ? p.hooks->before_barrier() : p.hooks->release();
    fence();
    synchronize(t);
    arch::acquire_fence();
    for (const participant& p : participants_) takes_part(p) ? p.hooks->after_barrier() : p.hooks->acquire();
    ++stats_.barriers;
    stats_.barrier_seconds += std::chrono::duration<double>(transport::clock_type::now() - t0).count();
  }

  // The ISA each rank runs (a job may mix x86-64 and arm64 processes).
  arch::isa isa_of(std::uint32_t r) const { return peers_.at(r).isa; }
  bool mixed_isa() const noexcept {
    return !peers_.empty() &&
           std::any_of(peers_.begin(), peers_.end(), [&](const peer& p) { return p.isa != peers_.front().isa; });
  }

  // Every rank's bytes, in rank order; sizes may differ between ranks.
  std::vector<std::vector<std::byte>> allgather(std::span<const std::byte> mine) { return allgather(world_, mine); }
  std::vector<std::vector<std::byte>> allgather(team_state& t, std::span<const std::byte> mine) {
    std::vector<std::vector<std::byte>> all;
    run(allgather_task<std::byte>(begin(t, collective_kind::allgather, "allgather"), {mine.begin(), mine.end()}, &all));
    return all;
  }

  // All to all: `to_each[r]` goes to rank r (one entry per rank; this
  // rank's own is returned as it is); returns what every rank sent this
  // one, in rank order.
  std::vector<std::vector<std::byte>> exchange(std::span<const std::vector<std::byte>> to_each) {
    return exchange(world_, to_each);
  }
  std::vector<std::vector<std::byte>> exchange(team_state& t, std::span<const std::vector<std::byte>> to_each) {
    if (to_each.size() != t.size())
      throw error(errc::internal, fmt::format("exchange with {} parts in {} of {} ranks", to_each.size(), t.name, t.size()));
    std::vector<std::vector<std::byte>> from;
    run(alltoall_task<std::byte>(begin(t, collective_kind::exchange, "alltoall"), {to_each.begin(), to_each.end()}, &from));
    return from;
  }

  std::vector<std::byte> broadcast(std::span<const std::byte> data, std::uint32_t root) {
    if (root >= ranks())
      throw error(errc::invalid_argument, fmt::format("broadcast from rank {} in a {}-rank job", root, ranks()));
    std::vector<std::byte> out(data.begin(), data.end());
    run(broadcast_task<std::byte>(begin(world_, collective_kind::broadcast, fmt::format("broadcast from rank {}", root)),
                                  root, &out));
    return out;
  }

  // ---- segments -------------------------------------------------------

  // Maps `bytes` of registered, zeroed memory homed here (at `at`, address
  // space the caller reserved, unless null); a size past what this machine
  // can hold now is errc::out_of_memory naming `object`, before anything is
  // mapped.
  segment_address allocate(std::uint64_t bytes, std::byte* at = nullptr, std::string_view object = "allocate") {
    const auto room = mappable_now(segment_limit_of(rank()), settings_);
    if (bytes > room.bytes) throw no_room(object, bytes, room);
    return map_segment(bytes, at);
  }

  // Whether fresh segments are shared mappings a second mapping can alias
  // (transport::allocations_are_shared), probed at the first call.
  bool fresh_segments_aliasable() {
    if (fresh_segments_aliasable_ < 0) fresh_segments_aliasable_ = transport::allocations_are_shared(worker_) ? 1 : 0;
    return fresh_segments_aliasable_ == 1;
  }

  // How many bytes the mapping of segment `id` homed here spans (its size
  // rounded up to the allocator's pages).
  std::size_t mapped_bytes_of(std::uint16_t id) {
    const auto g = worker_.lock();
    return id < slots_.size() && slots_[id].live ? slots_[id].memory.mapped_bytes() : 0;
  }

  // The largest segment rank r can map (learnt at start-up).
  std::uint64_t segment_limit_of(std::uint32_t r) const { return peers_.at(r).segment_limit; }

  // A size some rank can never map is refused by every rank alike, up
  // front (before anything is mapped or reserved for it).
  void check_collective_bytes(std::uint64_t bytes, std::string_view object = "allocate_collective") const {
    check_collective_bytes(world_, bytes, object);
  }
  void check_collective_bytes(const team_state& t, std::uint64_t bytes, std::string_view object) const {
    for (const std::uint32_t r : *t.members)
      if (bytes > segment_limit_of(r))
        throw error(errc::out_of_memory,
                    fmt::format("{}: {} bytes per rank asked; rank {} can map at most {} bytes (its physical memory or "
                                "DSM_MAX_SEGMENT_BYTES; on rank {} now: {})",
                                object, bytes, r, segment_limit_of(r), rank(),
                                mappable_now(segment_limit_of(rank()), settings_).details));
  }

  // Collective over team t: one segment of `bytes` per member, every
  // member's key known to every member at once. Returns the segments in
  // team-rank order. Every member first says how much it can map now, so
  // that one short of memory makes every member refuse
  // (errc::out_of_memory naming it), not some map and wait for it.
  std::vector<segment_address> allocate_collective(std::uint64_t bytes, std::byte* at = nullptr,
                                                   std::string_view object = "allocate_collective") {
    return allocate_collective(world_, bytes, at, object);
  }
  // `memory`: fresh memory UCX maps (at `at` if not null), or the
  // caller's own mapping at `at`, registered as it is (a global_region's
  // file-backed pages, which it maps twice); the caller unmaps it after
  // deallocate().
  std::vector<segment_address> allocate_collective(team_state& t, std::uint64_t bytes, std::byte* at,
                                                   std::string_view object,
                                                   segment_memory memory = segment_memory::fresh) {
    // Every rank must ask for the same size: checked, since a mismatch
    // would silently make some blocks shorter than others think.
    check_collective_bytes(t, bytes, object);
    const auto room = mappable_now(segment_limit_of(rank()), settings_);
    std::vector<std::byte> room_bytes(sizeof room.bytes);
    std::memcpy(room_bytes.data(), &room.bytes, sizeof room.bytes);
    const auto rooms = allgather(t, room_bytes);
    if (bytes > room.bytes) throw no_room(object, bytes, room);
    for (std::uint32_t m = 0; m < t.size(); ++m) {
      std::uint64_t theirs = 0;
      if (rooms[m].size() != sizeof theirs)
        throw error(errc::protocol,
                    fmt::format("{}: a room record of {} bytes from rank {}", object, rooms[m].size(), t.world_rank(m)));
      std::memcpy(&theirs, rooms[m].data(), sizeof theirs);
      if (bytes > theirs)
        throw error(errc::out_of_memory, fmt::format("{}: {} bytes per rank asked; rank {} can map only {} bytes now",
                                                     object, bytes, t.world_rank(m), theirs));
    }
    const auto mine = map_segment(bytes, at, memory);
    std::vector<std::byte> record_bytes(sizeof(segment_record));
    {
      const auto g = worker_.lock();
      local_segment& s = slots_[mine.segment];
      const segment_record rec{reinterpret_cast<std::uint64_t>(s.memory.base()), bytes, mine.segment, mine.generation, {}};
      std::memcpy(record_bytes.data(), &rec, sizeof rec);
      const auto rkey = s.memory.packed_rkey();
      record_bytes.insert(record_bytes.end(), rkey.begin(), rkey.end());
      for (const std::uint32_t r : *t.members)
        if (r != rank()) s.holders.insert(r);
    }
    const auto all = allgather(t, record_bytes);
    std::vector<segment_address> result(t.size());
    std::string mismatch;
    for (std::uint32_t m = 0; m < t.size(); ++m) {
      const std::uint32_t r = t.world_rank(m);
      segment_record rec;
      if (all[m].size() < sizeof rec)
        throw error(errc::protocol, fmt::format("segment record of {} bytes from rank {}", all[m].size(), r));
      std::memcpy(&rec, all[m].data(), sizeof rec);
      result[m] = {r, rec.segment, rec.generation};
      if (rec.bytes != bytes) {
        if (mismatch.empty())
          mismatch = fmt::format("rank {} asked for {} bytes per rank, rank {} for {}", r, rec.bytes, rank(), bytes);
        continue;  // never installed: its size is not the one this rank uses
      }
      if (r != rank()) {
        const auto g = worker_.lock();
        install_remote(r, rec, std::span(all[m]).subspan(sizeof rec));
      }
    }
    if (!mismatch.empty()) throw error(errc::invalid_argument, "allocate_collective: " + mismatch);
    return result;
  }

  // Frees a segment homed here. Every rank that may hold its key drops it
  // (and says so) before the memory is unmapped, so no later access can
  // reach reused memory; the slot's next occupant has a new generation.
  void deallocate(std::uint16_t id, std::uint8_t generation) {
    std::vector<std::uint32_t> holders;
    {
      const auto g = worker_.lock();
      local_segment* s = id < slots_.size() ? &slots_[id] : nullptr;
      if (s == nullptr || !s->live || s->generation != generation || s->dying)
        throw error(errc::stale_pointer,
                    fmt::format("deallocate of segment {} generation {}: already freed", id, unsigned{generation}));
      s->dying = true;
      holders.assign(s->holders.begin(), s->holders.end());
      for (std::uint32_t r : holders) messages_.send(*endpoints_, r, msg_segment_freed, {0, 0, {id, generation, 0}});
    }
    for (std::uint32_t r : holders)
      await({channel::free_ack, id, generation, r},
            [&] { return fmt::format("rank {} to drop its key of segment {} (deallocate)", r, id); });
    const auto g = worker_.lock();
    local_segment& s = slots_[id];
    local_segments().retire(id);
    s.memory = {};
    s.live = false;
    s.dying = false;
    s.holders.clear();
    s.generation = static_cast<std::uint8_t>(s.generation == 255 ? 1 : s.generation + 1);  // 0 means null
    free_slots_.push_back(id);
    ++stats_.deallocations;
  }

  // ---- address resolution ----------------------------------------------

  // This rank's memory for [offset, offset + bytes) of one of its segments.
  std::byte* local_bytes(std::uint16_t id, std::uint8_t generation, std::uint64_t offset, std::uint64_t bytes,
                         const char* operation) const {
    const local_segment_view* s = local_segments().find(id);
    if (s == nullptr || s->generation != generation) throw stale(operation, rank(), id, generation);
    check_bounds(operation, rank(), id, generation, offset, bytes, s->bytes);
    return s->base + offset;
  }

  // Calls post(remote_address) with the key of a peer's segment, fetching
  // it from the home on first use; bounds and generation are checked first,
  // so a bad address never reaches the target.
  template <class Post>
  [[gnu::always_inline]] decltype(auto) with_remote(std::uint32_t target, std::uint16_t id, std::uint8_t generation,
                                                    std::uint64_t offset, std::uint64_t bytes, const char* operation,
                                                    Post&& post) {
    // Inlined into every rput and rget: the key is known (the common case)
    // and in bounds; everything else is out of line.
    if (target < ranks()) [[likely]] {
      const auto g = worker_.lock();
      remote_segment* s = find_remote(target, id);
      if (s != nullptr && s->generation == generation) [[likely]] {
        check_bounds(operation, target, id, generation, offset, bytes, s->bytes);
        return post(transport::remote_address{static_cast<int>(target), s->base + offset, s->rkey.handle()});
      }
    }
    install_key_for(target, id, generation, operation);
    const auto g = worker_.lock();
    remote_segment* s = find_remote(target, id);
    if (s == nullptr || s->generation != generation) [[unlikely]] throw_not_installed(operation, target, id);
    check_bounds(operation, target, id, generation, offset, bytes, s->bytes);
    return post(transport::remote_address{static_cast<int>(target), s->base + offset, s->rkey.handle()});
  }

 private:
  // with_remote's first use of a peer's segment: the target checked, the
  // key fetched from the home (without the worker lock: the fetch waits).
  [[gnu::noinline]] void install_key_for(std::uint32_t target, std::uint16_t id, std::uint8_t generation,
                                         const char* operation) {
    if (target >= ranks())
      throw error(errc::invalid_argument, fmt::format("{} to unit {} in a {}-rank job", operation, target, ranks()));
    fetch_remote(target, id, generation, operation);
  }
  [[noreturn, gnu::noinline, gnu::cold]] static void throw_not_installed(const char* operation, std::uint32_t target,
                                                                       std::uint16_t id) {
    throw error(errc::internal, fmt::format("{}: key of rank {} segment {} not installed", operation, target, id));
  }

  static error stale(const char* operation, std::uint32_t target, std::uint16_t id, std::uint8_t generation) {
    return error(errc::stale_pointer, fmt::format("{} through unit {} seg {} gen {}: that segment was freed", operation,
                                                  target, id, unsigned{generation}));
  }

  [[noreturn, gnu::noinline, gnu::cold]] static void throw_out_of_segment(const char* operation, std::uint32_t target,
                                                                        std::uint16_t id, std::uint8_t generation,
                                                                        std::uint64_t offset, std::uint64_t bytes,
                                                                        std::uint64_t segment_bytes) {
    throw error(errc::out_of_range,
                fmt::format("{} of {} bytes at unit {} seg {} gen {} +{:#x}: outside the segment of {} bytes", operation,
                            bytes, target, id, unsigned{generation}, offset, segment_bytes));
  }
  // Inlined into every transfer; the message is formatted out of line.
  static void check_bounds(const char* operation, std::uint32_t target, std::uint16_t id, std::uint8_t generation,
                           std::uint64_t offset, std::uint64_t bytes, std::uint64_t segment_bytes) {
#if DSM_CHECKS
    if (offset > segment_bytes || bytes > segment_bytes - offset) [[unlikely]]
      throw_out_of_segment(operation, target, id, generation, offset, bytes, segment_bytes);
#else
    (void)operation, (void)target, (void)id, (void)generation, (void)offset, (void)bytes, (void)segment_bytes;
#endif
  }

  static constexpr std::uint32_t max_signature_bytes = 4096;
  static constexpr std::uint64_t max_open_collectives = 4096;  // calls a rank may leave behind it, per team
  static std::uint64_t collective_slot(collective_kind k, std::uint64_t round) noexcept {
    return round | (static_cast<std::uint64_t>(k) << 32);
  }
  static std::string_view signature_in(const std::vector<std::byte>& payload) noexcept {
    std::uint32_t n = 0;
    std::memcpy(&n, payload.data(), sizeof n);  // checked on arrival
    return {reinterpret_cast<const char*>(payload.data()) + sizeof n, n};
  }
  [[noreturn]] void mismatch(const collective_call& c, std::uint32_t source, std::string_view theirs, collective_kind kind) {
    mismatch({c.team, c.seq, c.kind, c.signature}, source, theirs, kind);
  }
  [[noreturn]] void mismatch(const call_id& c, std::uint32_t source, std::string_view theirs, collective_kind kind) {
    const auto text = fmt::format(
        "{}collective {} finds rank {} in {} ({}) and rank {} in {} ({})",
        c.team == 0 ? std::string() : fmt::format("team {:#x}: ", c.team), c.seq, rank(), c.signature,
        to_string(c.kind), source, theirs, to_string(kind));
    fail_everywhere(errc::collective_mismatch, text, static_cast<int>(source));
    throw error(errc::collective_mismatch, text);
  }

  // Every message a rank sends in a collective is received by its target
  // in that collective: one left when this rank's part of the call is
  // done, or one for an earlier call that is no longer open, comes from a
  // peer that was in another collective there (two ranks that each think
  // they are the root of a broadcast send messages nobody awaits).
  void expect_nothing_more(const call_id& c) {
    remember_finished(c);
    if (auto left = mail_.first_collective([&](const mail_key& k) { return k.team == c.team && k.first == c.seq; }))
      mismatch(c, left->first.source, signature_in(left->second), static_cast<collective_kind>(left->first.second >> 32));
    expect_nothing_before(c);
  }
  void expect_nothing_before(const call_id& c) {
    const auto closed = [&](const mail_key& k) {
      if (k.team != c.team || k.first >= c.seq) return false;
      const bool pending = std::any_of(pending_.begin(), pending_.end(), [&](const pending_collective* p) {
        return p->call.team == k.team && p->call.seq == k.first;
      });
      return !pending && std::find(running_.begin(), running_.end(), std::pair{k.team, k.first}) == running_.end();
    };
    if (auto left = mail_.first_collective(closed)) {
      const auto known = std::find_if(finished_calls_.begin(), finished_calls_.end(), [&](const call_id& f) {
        return f.team == c.team && f.seq == left->first.first;
      });
      const call_id earlier = known != finished_calls_.end()
                                  ? *known
                                  : call_id{c.team, left->first.first, c.kind, "a collective it had finished"};
      mismatch(earlier, left->first.source, signature_in(left->second), static_cast<collective_kind>(left->first.second >> 32));
    }
  }
  // What the last calls were, for naming them when a stray message comes.
  void remember_finished(const call_id& c) {
    if (finished_calls_.size() == 64) finished_calls_.pop_front();
    finished_calls_.push_back(c);
  }

  // The worker's wait hook: every pending collective as far as it goes.
  void advance_pending() noexcept {
    for (pending_collective* p : pending_) advance(*p);
  }

  template <class Describe>
  std::vector<std::byte> await(const mail_key& key, Describe&& describe) {
    std::optional<std::vector<std::byte>> got;
    worker_.wait_until([&] { return (got = mail_.take(key)).has_value(); }, worker_.timeout(), describe,
                       static_cast<int>(key.source));
    return std::move(*got);
  }

  std::uint16_t free_slot() {
    // Freed slots are reused oldest first, so a generation comes round
    // again as late as possible.
    if (!free_slots_.empty()) {
      const std::uint16_t id = free_slots_.front();
      free_slots_.pop_front();
      return id;
    }
    if (slots_.size() >= local_segment_table::max_segments)
      throw error(errc::invalid_argument, fmt::format("rank {} has {} live segments, the most a global_ptr can name",
                                                      rank(), slots_.size()));
    slots_.emplace_back();
    return static_cast<std::uint16_t>(slots_.size() - 1);
  }

  remote_segment* find_remote(std::uint32_t target, std::uint16_t id) {
    auto& per_rank = remote_[target];
    return id < per_rank.size() ? per_rank[id].get() : nullptr;
  }

  // Under the worker lock.
  void install_remote(std::uint32_t target, const segment_record& rec, std::span<const std::byte> packed_rkey) {
    auto& per_rank = remote_[target];
    if (rec.segment >= per_rank.size()) per_rank.resize(std::size_t{rec.segment} + 1);
    if (per_rank[rec.segment]) graveyard_.push_back(std::move(per_rank[rec.segment]));
    per_rank[rec.segment] = std::make_unique<remote_segment>(remote_segment{
        rec.generation, rec.base, rec.bytes,
        transport::remote_key(worker_, (*endpoints_)[target], packed_rkey, static_cast<int>(target))});
  }

  error no_room(std::string_view object, std::uint64_t bytes, const room& r) const {
    return error(errc::out_of_memory, fmt::format("{}: {} bytes asked on rank {}, {} available, bounded by {} ({})",
                                                  object, bytes, rank(), r.bytes, r.bound, r.details));
  }

  segment_address map_segment(std::uint64_t bytes, std::byte* at, segment_memory memory = segment_memory::fresh) {
    std::uint16_t id;
    {
      const auto g = worker_.lock();
      id = free_slot();
      local_segment& s = slots_[id];
      s.memory = memory == segment_memory::fresh
                     ? transport::memory_region(worker_, bytes, at)
                     : transport::memory_region(worker_, at, bytes, transport::memory_region::caller_mapped);
      s.bytes = bytes;
      s.live = true;
      s.dying = false;
      s.holders.clear();
      local_segments().publish(id, {s.memory.base(), bytes, s.generation});
    }
    ++stats_.allocations;
    return {rank(), id, slots_[id].generation};
  }

  void fetch_remote(std::uint32_t target, std::uint16_t id, std::uint8_t generation, const char* operation) {
    const std::uint64_t request = next_request_++;
    {
      const std::lock_guard g{pending_mutex_};
      pending_rkeys_.emplace(request, pending_rkey{target, id, generation});
    }
    messages_.send(*endpoints_, target, msg_rkey_request, {0, 0, {request, id, generation}});
    ++stats_.rkey_fetches;
    const auto reply = await({channel::rkey_reply, request, 0, target},
                             [&] { return fmt::format("the key of segment {} from rank {} ({})", id, target, operation); });
    // The handler checked the reply against the request: status, then the
    // record and key.
    std::uint64_t status;
    std::memcpy(&status, reply.data(), sizeof status);
    if (status == rkey_refused)
      throw error(errc::protocol, fmt::format("{}: rank {} answered the key request for segment {} with a malformed "
                                              "reply", operation, target, id));
    if (status != rkey_ok) throw stale(operation, target, id, generation);
    segment_record rec;
    std::memcpy(&rec, reply.data() + sizeof status, sizeof rec);
    const auto g = worker_.lock();
    install_remote(target, rec, std::span(reply).subspan(sizeof status + sizeof rec));
  }

  // What every rank says of itself at start-up: its ISA and the largest
  // segment it can map (a key reply claiming more is refused).
  struct peer_record {
    std::uint32_t isa;
    std::uint32_t reserved;
    std::uint64_t program;  // program_image's identity: which binary
    std::uint64_t segment_limit;
    std::uint64_t host;  // host_identity()
    watch_contact watch;
    std::array<char, 64> host_name;  // for messages; NUL-terminated
  };
  static_assert(sizeof(peer_record) == 128 && std::is_trivially_copyable_v<peer_record>);
  struct peer {
    arch::isa isa;
    std::uint64_t program;
    std::uint64_t segment_limit;
    std::uint64_t host;
    std::string host_name;
  };

  // Which machine this process runs on, as far as sharing memory goes:
  // its host name, boot and shared-memory file system (a simulated host
  // with a private /dev/shm is a host of its own).
  static std::string this_host_name() {
    std::string name(256, '\0');
    if (::gethostname(name.data(), name.size() - 1) != 0) name.clear();
    name.resize(std::strlen(name.c_str()));
    return name;
  }
  static std::uint64_t host_identity(const std::string& host_name) {
    std::string id = host_name;
    if (std::FILE* f = std::fopen("/proc/sys/kernel/random/boot_id", "r")) {
      char boot[64] = {};
      if (std::fgets(boot, sizeof boot, f) != nullptr) id += boot;
      std::fclose(f);
    }
    struct stat shm {};
    if (::stat("/dev/shm", &shm) == 0) id += fmt::format("/{}:{}", shm.st_dev, shm.st_ino);
    std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
    for (const char ch : id) h = (h ^ static_cast<unsigned char>(ch)) * 0x100000001b3ull;
    return h;
  }

  void learn_peers() {
    const std::string host_name = this_host_name();
    peer_record mine{static_cast<std::uint32_t>(arch::host_isa), 0, program_image::self().identity(),
                     segment_limit(settings_), host_identity(host_name), watch_.contact(), {}};
    host_name.copy(mine.host_name.data(), mine.host_name.size() - 1);
    std::vector<std::byte> record(sizeof mine);
    std::memcpy(record.data(), &mine, sizeof mine);
    const auto all = allgather(record);
    std::vector<peer> known;
    std::vector<watch_contact> contacts;
    for (std::uint32_t r = 0; r < ranks(); ++r) {
      peer_record rec;
      if (all[r].size() != sizeof rec)
        throw error(errc::protocol, fmt::format("a start-up record of {} bytes from rank {}", all[r].size(), r));
      std::memcpy(&rec, all[r].data(), sizeof rec);
      if (rec.isa > static_cast<std::uint32_t>(arch::isa::other) || rec.reserved != 0 || rec.segment_limit == 0)
        throw error(errc::protocol, fmt::format("rank {} names ISA {} and a segment limit of {} bytes", r, rec.isa,
                                                rec.segment_limit));
      rec.host_name.back() = '\0';
      known.push_back({static_cast<arch::isa>(rec.isa), rec.program, rec.segment_limit, rec.host, rec.host_name.data()});
      contacts.push_back(rec.watch);
    }
    std::vector<std::uint64_t> hosts;
    for (const auto& p : known) hosts.push_back(p.host);
    {
      // on_peer_error reads the list on whichever thread progresses UCX.
      const auto g = worker_.lock();
      peers_ = std::move(known);
    }
    watch_.start(rank(), watched_peers(rank(), hosts), contacts, transport::deadline{worker_.timeout()},
                 [this](std::uint32_t r, std::string cause) { on_host_lost(r, std::move(cause)); });
  }

  // The peer watch's word on a rank of another machine (on its thread).
  void on_host_lost(std::uint32_t r, std::string cause) {
    if (leaving_.load()) return;
    std::string there;
    for (std::uint32_t k = 0; k < ranks(); ++k)
      if (peers_[k].host == peers_[r].host) there += (there.empty() ? "" : ", ") + std::to_string(k);
    worker_.fail_job(errc::peer_failure,
                     fmt::format("rank {} on {} is lost: {}; ranks there: {}", r,
                                 peers_[r].host_name.empty() ? "another machine" : peers_[r].host_name, cause, there),
                     static_cast<int>(r));
  }

  void register_handlers() {
    messages_.on(msg_collective, "collective", [this](const transport::message_header& h, std::span<const std::byte> payload) {
      const std::uint64_t seq = h.word[0], team = h.word[2];
      if (team == 0) {
        const std::uint64_t next = world_.next_sequence.load();
        // Non-blocking collectives leave older calls open behind the current one.
        if (seq + max_open_collectives < next || seq >= next + (1u << 20))
          throw error(errc::protocol, fmt::format("collective {} while this rank is at {}", seq, next));
      } else if (seq >= (std::uint64_t{1} << 48)) {
        throw error(errc::protocol, fmt::format("collective {} on team {:#x}", seq, team));
      }
      const std::uint64_t kind = h.word[1] >> 32, round = h.word[1] & 0xffffffffu;
      if (kind < 1 || kind > last_collective_kind || round > reduction_last_round)
        throw error(errc::protocol, fmt::format("collective round {} of kind {}", round, kind));
      std::uint32_t signature_bytes = 0;
      if (payload.size() >= sizeof signature_bytes) std::memcpy(&signature_bytes, payload.data(), sizeof signature_bytes);
      if (payload.size() < sizeof signature_bytes || signature_bytes > max_signature_bytes ||
          signature_bytes > payload.size() - sizeof signature_bytes)
        throw error(errc::protocol, fmt::format("collective {} with a signature of {} bytes in {}", seq, signature_bytes,
                                                payload.size()));
      if (!mail_.deposit({channel::collective, seq, h.word[1], h.source_rank, team}, payload))
        throw error(errc::protocol, fmt::format("duplicate collective {} round {}", seq, round));
    });
    messages_.on(msg_job_failed, "job failed", [this](const transport::message_header& h, std::span<const std::byte> payload) {
      if (h.word[0] != static_cast<std::uint64_t>(errc::collective_mismatch) || h.word[1] != 0 || h.word[2] != 0 ||
          payload.size() > rendezvous::max_notice_text_bytes)
        throw error(errc::protocol, fmt::format("job-failed notice of category {} with {} bytes", h.word[0], payload.size()));
      if (leaving_.load()) return;
      worker_.fail_job(errc::collective_mismatch,
                       std::string(reinterpret_cast<const char*>(payload.data()), payload.size()),
                       static_cast<int>(h.source_rank));
    });
    messages_.on(msg_rpc, "rpc", [this](const transport::message_header& h, std::span<const std::byte> payload) {
      if (payload.size() > max_rpc_bytes)
        throw error(errc::protocol, fmt::format("rpc {} with {} bytes of arguments", h.word[0], payload.size()));
      rpc_.deposit_request({h.source_rank, h.word[0], h.word[1], h.word[2], {payload.begin(), payload.end()}},
                           [this](bool armed) { worker_.arm_wait_hook(armed); });
    });
    messages_.on(msg_rpc_reply, "rpc reply", [this](const transport::message_header& h, std::span<const std::byte> payload) {
      if (h.word[2] != 0) throw error(errc::protocol, fmt::format("rpc reply {} with word {:#x}", h.word[0], h.word[2]));
      rpc_.deposit_reply(h.source_rank, h.word[0], h.word[1], payload);
    });
    messages_.on(msg_packed_put, "packed put", [this](const transport::message_header& h, std::span<const std::byte> payload) {
      std::uint64_t status = rpc_ok;
      std::string text;
      try {
        unpack_put(h, payload);
      } catch (const error& e) {
        if (e.category() != errc::stale_pointer) messages_.reject("packed put", h.source_rank, e);
        status = 1 + static_cast<std::uint64_t>(e.category());
        text = e.message();
      }
      messages_.send(*endpoints_, h.source_rank, msg_rpc_reply, {0, 0, {h.word[0], status, 0}}, rendezvous::as_bytes(text));
    });
    messages_.on(msg_rkey_request, "rkey request", [this](const transport::message_header& h, std::span<const std::byte> payload) {
      const std::uint64_t id = h.word[1], generation = h.word[2];
      if (id >= local_segment_table::max_segments || generation == 0 || generation > 255 || !payload.empty())
        throw error(errc::protocol, fmt::format("rkey request for segment {} generation {}", id, generation));
      std::vector<std::byte> reply(sizeof(std::uint64_t) + sizeof(segment_record));
      std::uint64_t status = rkey_stale;
      if (id < slots_.size() && slots_[id].live && !slots_[id].dying && slots_[id].generation == generation) {
        local_segment& s = slots_[id];
        status = rkey_ok;
        s.holders.insert(h.source_rank);
        const segment_record rec{reinterpret_cast<std::uint64_t>(s.memory.base()), s.bytes, static_cast<std::uint16_t>(id),
                                 s.generation, {}};
        std::memcpy(reply.data() + sizeof status, &rec, sizeof rec);
        const auto rkey = s.memory.packed_rkey();
        reply.insert(reply.end(), rkey.begin(), rkey.end());
      }
      std::memcpy(reply.data(), &status, sizeof status);
      messages_.send(*endpoints_, h.source_rank, msg_rkey_reply, {0, 0, {h.word[0], status, 0}}, reply);
    });
    messages_.on(msg_rkey_reply, "rkey reply", [this](const transport::message_header& h, std::span<const std::byte> payload) {
      // Only the rank asked can answer, and only once; a reply claiming to
      // come from another rank leaves the request waiting for the real one.
      pending_rkey asked;
      {
        const std::lock_guard g{pending_mutex_};
        const auto found = pending_rkeys_.find(h.word[0]);
        if (found == pending_rkeys_.end())
          throw error(errc::protocol, fmt::format("unsolicited rkey reply {}", h.word[0]));
        if (found->second.target != h.source_rank)
          throw error(errc::protocol, fmt::format("rkey reply {} for a request to rank {}", h.word[0], found->second.target));
        asked = found->second;
        pending_rkeys_.erase(found);
      }
      const auto problem = rkey_reply_problem(asked, h, payload);
      if (!problem.empty()) {
        // Still wake the waiter, with a refusal: it must not hang on garbage.
        std::vector<std::byte> refusal(sizeof(std::uint64_t) + sizeof(segment_record));
        const std::uint64_t refused = rkey_refused;
        std::memcpy(refusal.data(), &refused, sizeof refused);
        mail_.deposit({channel::rkey_reply, h.word[0], 0, h.source_rank}, refusal);
        throw error(errc::protocol, fmt::format("rkey reply {} for segment {} generation {}: {}", h.word[0],
                                                asked.segment, unsigned{asked.generation}, problem));
      }
      mail_.deposit({channel::rkey_reply, h.word[0], 0, h.source_rank}, payload);
    });
    messages_.on(msg_segment_freed, "segment freed", [this](const transport::message_header& h, std::span<const std::byte> payload) {
      const std::uint64_t id = h.word[0], generation = h.word[1];
      if (id >= local_segment_table::max_segments || generation == 0 || generation > 255 || h.word[2] != 0 || !payload.empty())
        throw error(errc::protocol, fmt::format("segment freed: segment {} generation {}", id, generation));
      auto& per_rank = remote_[h.source_rank];
      if (id < per_rank.size() && per_rank[id] && per_rank[id]->generation == generation)
        graveyard_.push_back(std::move(per_rank[id]));
      messages_.send(*endpoints_, h.source_rank, msg_free_ack, {0, 0, {id, generation, 0}});
    });
    messages_.on(msg_object, "object", [this](const transport::message_header& h, std::span<const std::byte> payload) {
      deliver_to_object(h, payload);
    });
    messages_.on(msg_leaving, "leaving", [this](const transport::message_header& h, std::span<const std::byte> payload) {
      if (h.word[0] > leaving_failed || h.word[1] > 1 || h.word[2] > h.word[1] ||
          payload.size() > rendezvous::max_notice_text_bytes)
        throw error(errc::protocol, fmt::format("leaving notice of kind {} with {} bytes", h.word[0], payload.size()));
      if (h.word[0] == leaving_finished) {
        finished_peers_[h.source_rank] = 1;
        return;
      }
      gone_peers_[h.source_rank] = 1;
      if (leaving_.load()) return;  // this rank is going anyway
      const std::string_view why(reinterpret_cast<const char*>(payload.data()), payload.size());
      worker_.fail_job(h.word[2] ? errc::collective_mismatch : errc::peer_failure,
                       h.word[1] ? std::string(why) : fmt::format("rank {} left the job: {}", h.source_rank, why),
                       static_cast<int>(h.source_rank));
    });
    messages_.on(msg_free_ack, "free ack", [this](const transport::message_header& h, std::span<const std::byte> payload) {
      const std::uint64_t id = h.word[0], generation = h.word[1];
      const bool expected = id < slots_.size() && slots_[id].dying && slots_[id].generation == generation &&
                            slots_[id].holders.count(h.source_rank) == 1 && h.word[2] == 0 && payload.empty();
      if (!expected) throw error(errc::protocol, fmt::format("unexpected free ack for segment {} generation {}", id, generation));
      mail_.deposit({channel::free_ack, id, generation, h.source_rank}, {});
    });
  }

  // UCX's error callback: rank r's endpoint failed. Expected of a rank
  // that finished (its endpoints close) and once this rank is leaving.
  // Under dsmrun, whose child every rank is, dsmrun is asked: it knows
  // whether r's process ended and how, and answers in every case (the
  // job's end naming how r ended, r finished, or r still runs and the job
  // ends as a lost connection), however late it is scheduled. Without its
  // answer (dsmrun stopped) the failure takes effect after
  // lost_peer_fallback.
  static constexpr std::chrono::seconds lost_peer_fallback{10};
  void on_peer_error(std::size_t r, ucs_status_t status) {
    if (r == rank() || finished_peers_[r]) return;
    gone_peers_[r] = 1;
    if (leaving_.load()) return;
    const bool elsewhere = r < peers_.size() && peers_[r].host != peers_[rank()].host && !peers_[r].host_name.empty();
    auto text = fmt::format("rank {}{} is unreachable ({}): it ended without leaving the job (killed, crashed or "
                            "exited early), or its machine is gone",
                            r, elsewhere ? " on " + peers_[r].host_name : std::string(), ucs_status_string(status));
    if (membership_.rendezvous_fd >= 0) {
      worker_.fail_job_soon(errc::peer_failure, std::move(text), static_cast<int>(r), lost_peer_fallback);
      launcher_->lost_peer(static_cast<std::uint32_t>(r), ucs_status_string(status));
    } else
      worker_.fail_job(errc::peer_failure, std::move(text), static_cast<int>(r));
  }

  struct pending_rkey {
    std::uint32_t target;
    std::uint16_t segment;
    std::uint8_t generation;
  };

 public:
  // What is wrong with a key reply to request `asked`, or nothing (see
  // check_rkey_reply).
  std::string rkey_reply_problem(const pending_rkey& asked, const transport::message_header& h,
                                 std::span<const std::byte> payload) const {
    return check_rkey_reply(asked.segment, asked.generation, segment_limit_of(asked.target), h.word[1], h.word[2], payload);
  }

 private:
  settings settings_;
  transport::worker worker_;
  transport::active_messages messages_;
  membership membership_;
  std::unique_ptr<launcher_link> launcher_;
  std::vector<std::uint8_t> finished_peers_;  // by rank: said it finished (under the worker lock)
  std::vector<std::uint8_t> gone_peers_;      // by rank: left failing, or its endpoint failed (ditto)
  std::atomic<bool> leaving_{false};
  std::vector<peer> peers_;      // by rank; written under the worker lock, once
  peer_watch watch_{settings_.host_timeout_seconds};  // before learn_peers publishes its contact
  std::unique_ptr<transport::endpoints> endpoints_;
  mailbox mail_;
  team_state world_;
  std::shared_ptr<team_state> local_team_;
  std::vector<pending_collective*> pending_;  // non-blocking collectives in flight (this thread's)
  std::vector<std::string> operations_;       // collective operations in progress, outermost first
  call_id last_begun_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> running_;  // blocking calls being driven: team, sequence
  std::deque<call_id> finished_calls_;
  std::atomic<std::uint64_t> next_request_{1};
  int fresh_segments_aliasable_ = -1;  // unknown until probed
  std::mutex pending_mutex_;
  std::map<std::uint64_t, pending_rkey> pending_rkeys_;
  std::deque<local_segment> slots_;  // deque: growing never moves a slot
  std::deque<std::uint16_t> free_slots_;
  std::vector<std::vector<std::unique_ptr<remote_segment>>> remote_;
  std::vector<std::unique_ptr<remote_segment>> graveyard_;  // keys that in-flight operations may still use
  struct participant {
    sync_participant* hooks;
    std::uint64_t team_id;
  };
  std::vector<participant> participants_;
  struct registered_object {
    object_endpoint* endpoint;
    std::shared_ptr<const std::vector<std::uint32_t>> members;  // null: the world (no translation)
  };
  std::map<std::uint64_t, registered_object> objects_;
  std::set<std::uint64_t> retired_objects_;
  std::atomic<std::uint64_t> late_object_messages_{0};
  rpc_service rpc_;
  bool open_for_rpcs_ = false;
  runtime_stats stats_;
};

}  // namespace dsm::detail
