// A pointer-based structure shared as it is: rank 0 builds a binary search
// tree in a dsm::global_region (nodes from region_allocator, plain
// pointers between them), every rank walks it after a barrier, then every
// rank inserts keys of its own (a twentieth as many) under a critical
// section, and everybody checks the whole tree. No serialisation, no global pointers: the region
// is at one address on every rank, so its pointers mean the same there.
//
//   dsmrun -n 4 build/examples/region_tree [keys]
#include <dsm/dsm.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

struct node {
  std::uint64_t key;
  std::uint64_t value;
  node* left = nullptr;
  node* right = nullptr;
};

// NPB's linear congruential generator: the same keys on every rank.
std::uint64_t scramble(std::uint64_t k) { return (k * 6364136223846793005u + 1442695040888963407u) >> 20; }

void insert(node*& root, node* n) {
  node** at = &root;
  while (*at != nullptr) at = n->key < (*at)->key ? &(*at)->left : &(*at)->right;
  *at = n;
}
const node* find(const node* root, std::uint64_t key) {
  while (root != nullptr && root->key != key) root = key < root->key ? root->left : root->right;
  return root;
}
std::uint64_t count(const node* n) { return n == nullptr ? 0 : 1 + count(n->left) + count(n->right); }
std::uint64_t depth(const node* n) { return n == nullptr ? 0 : 1 + std::max(depth(n->left), depth(n->right)); }

}  // namespace

int main(int argc, char** argv) {
  dsm::runtime rt{argc, argv};
  const std::uint64_t keys = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20000;
  const int me = dsm::rank(), n = dsm::ranks();
  dsm::global_region<dsm::single_writer> region(std::size_t{64} << 20, "tree");
  dsm::region_allocator<node> nodes(region);
  // The root pointer lives in the region too: rank 0 allocates it.
  node** root = nullptr;
  if (me == 0) {
    root = dsm::region_allocator<node*>(region).new_object(nullptr);
    for (std::uint64_t k = 0; k < keys; ++k) insert(*root, nodes.new_object(node{scramble(k), k}));
  }
  root = reinterpret_cast<node**>(dsm::broadcast(reinterpret_cast<std::uintptr_t>(root), 0));
  dsm::barrier();

  // Every rank walks rank 0's tree.
  std::uint64_t found = 0;
  for (std::uint64_t k = 0; k < keys; ++k)
    if (const node* f = find(*root, scramble(k)); f != nullptr && f->value == k) ++found;
  const auto faults_after_walk = region.stats().read_faults;
  dsm::barrier();

  // Each rank adds keys of its own, one critical section each.
  const std::uint64_t mine = std::max<std::uint64_t>(keys / 20, 1);
  for (std::uint64_t k = 0; k < mine; ++k) {
    const std::uint64_t id = keys + static_cast<std::uint64_t>(me) * mine + k;
    node* fresh = nodes.new_object(node{scramble(id), id});
    region.critical("tree", [&] { insert(*root, fresh); });
  }
  dsm::barrier();
  const std::uint64_t total = count(*root);
  std::uint64_t found_all = 0;
  for (std::uint64_t id = 0; id < keys + mine * static_cast<std::uint64_t>(n); ++id)
    if (const node* f = find(*root, scramble(id)); f != nullptr && f->value == id) ++found_all;
  const bool ok = found == keys && total == keys + mine * static_cast<std::uint64_t>(n) && found_all == total;
  const int failed = dsm::allreduce(ok ? 0 : 1);
  fmt::print("rank {}: walked {} of {} keys ({} page faults), then {} of {} after every rank's inserts, depth {} ({})\n",
             me, found, keys, faults_after_walk, found_all, total, depth(*root), ok ? "ok" : "WRONG");
  dsm::barrier();
  if (me == 0) fmt::print("region_tree: {}\n", failed == 0 ? "every rank found every key" : "FAILED");
  return failed == 0 ? 0 : 1;
}
