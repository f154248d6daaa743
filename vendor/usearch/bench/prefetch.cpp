// USearch alone, to measure what the prefetch in `vectors_prefetch_t` (../APERTURE.md) does
// without Aperture around it. Not part of the crate's build.
//
// It builds a graph of `n` vectors of `dims` 8-bit components (clustered unit vectors shaped
// like the search bench's, quantised as Aperture quantises them; M 16, expansion 128) on two
// threads and saves it to `path`; a later run loads it instead. Then, at ef 16 and 28 (twice
// each), it times 500 queries one at a time (the median of five passes) and in two threads.
// Set THREADS (contexts reserved; Aperture reserves 64) and ANY=1 (each search takes any free
// context, as Aperture's do) to search as Aperture does.
//
// Built from the repository's root, after a release build made NumKong's library:
//   NK=$(dirname "$(ls target/release/build/numkong-*/out/libnumkong.a | head -1)")
//   NKI=$(ls -d ~/.cargo/registry/src/*/numkong-7.8.*/include | head -1)
//   g++ -std=c++17 -O3 -ffast-math -DUSEARCH_USE_OPENMP=0 -DUSEARCH_USE_NUMKONG=1 \
//     -DNK_DYNAMIC_DISPATCH=1 -DNK_NATIVE_BF16=0 -DNK_NATIVE_F16=0 \
//     -Ivendor/usearch/include -I"$NKI" \
//     vendor/usearch/bench/prefetch.cpp -o /tmp/prefetch "$NK/libnumkong.a" -lpthread
//   /tmp/prefetch 1280 1000000 /tmp/graph-1280.usearch   # about 8 minutes the first time
#include <usearch/index_dense.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>
#include <algorithm>
using namespace unum::usearch;
struct Rng { uint64_t s; uint64_t next(){ s ^= s<<13; s^= s>>7; s^= s<<17; return s;} float gauss(){ float u1=((next()>>11)+1)*(1.0/9007199254740993.0); float u2=(next()>>11)*(1.0/9007199254740992.0); return std::sqrt(-2*std::log(u1))*std::cos(6.2831853f*u2);} };
static const int LAT=32, CEN=4096;
struct Model { int d; std::vector<float> P, C; Model(int d):d(d){ Rng r{0xC0FFEEull ^ d}; P.resize(d*LAT); C.resize(CEN*LAT); for(auto&x:P)x=r.gauss(); for(auto&x:C)x=r.gauss(); }
  void row(Rng& r, float* out){ float z[LAT]; int c=r.next()%CEN; for(int j=0;j<LAT;j++) z[j]=C[c*LAT+j]+0.5f*r.gauss(); double n=0; for(int i=0;i<d;i++){ float s=0; for(int j=0;j<LAT;j++) s+=P[i*LAT+j]*z[j]; out[i]=s; n+=s*s;} float sig=0.1f*std::sqrt(n)/std::sqrt((float)d); n=0; for(int i=0;i<d;i++){ out[i]+=sig*r.gauss(); n+=out[i]*out[i];} float inv=1/std::sqrt(n); for(int i=0;i<d;i++) out[i]*=inv; } };
static void quant(const float* v, int8_t* q, int d){ float sc=127.0f*std::max(1.0f,std::sqrt((float)d)/8.0f); for(int i=0;i<d;i++){ float x=std::clamp(v[i]*sc,-127.0f,127.0f); q[i]=(int8_t)(x+std::copysign(0.49999997f,x)); } }
int main(int argc, char** argv){
  if(argc!=4){ fprintf(stderr, "usage: %s DIMS N GRAPH_FILE\n", argv[0]); return 2; }
  int d=atoi(argv[1]); size_t n=atoll(argv[2]); const char* path=argv[3]; int nq=500;
  Model m(d);
  metric_punned_t metric(d, metric_kind_t::ip_k, scalar_kind_t::i8_k);
  index_dense_config_t cfg(16,128,64);
  auto made = index_dense_t::make(metric, cfg); index_dense_t idx = std::move(made.index);
  FILE* f=fopen(path,"rb");
  if(f){ fclose(f); auto t0=std::chrono::steady_clock::now(); auto r=idx.load(path); if(!r){printf("load fail %s\n", r.error.what()); return 1;} printf("loaded %zu in %.1fs\n", idx.size(), std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count()); }
  else {
    idx.reserve(index_limits_t(n, 2));
    auto t0=std::chrono::steady_clock::now();
    auto work=[&](int t){ std::vector<float> v(d); std::vector<int8_t> q(d); for(size_t i=t;i<n;i+=2){ Rng r{(i+1)*0x9E3779B97F4A7C15ull}; m.row(r,v.data()); quant(v.data(),q.data(),d); idx.add(i, q.data(), t);} };
    std::thread a(work,0), b(work,1); a.join(); b.join();
    printf("built %zu in %.1fs\n", idx.size(), std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count());
    idx.save(path);
  }
  std::vector<int8_t> Q(nq*d); { std::vector<float> v(d); for(int i=0;i<nq;i++){ Rng r{(i+7777777ull)*0xD1B54A32D192ED03ull}; m.row(r,v.data()); quant(v.data(),&Q[i*d],d);} }
  idx.reserve(index_limits_t(idx.size(), std::max(2, getenv("THREADS") ? atoi(getenv("THREADS")) : 2)));
  std::vector<uint64_t> keys(40); std::vector<float> dist(40);
  const bool any = getenv("ANY") != nullptr;
  for(int ef: {16, 28, 16, 28}){
    idx.change_expansion_search(ef);
    for(int i=0;i<nq;i++) idx.search(&Q[i*d], ef).dump_to(keys.data(), dist.data()); // warm
    std::vector<double> runs;
    for(int rep=0;rep<5;rep++){ auto t0=std::chrono::steady_clock::now(); for(int i=0;i<nq;i++) idx.search(&Q[i*d], ef, any ? index_dense_t::any_thread() : 0).dump_to(keys.data(), dist.data()); runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count()); }
    std::sort(runs.begin(),runs.end()); double single=nq/runs[2];
    std::vector<double> bruns;
    for(int rep=0;rep<5;rep++){ auto t0=std::chrono::steady_clock::now(); auto w=[&](int t){ std::vector<uint64_t> k(40); std::vector<float> ds(40); for(int i=t;i<nq;i+=2) idx.search(&Q[i*d], ef, any ? index_dense_t::any_thread() : t).dump_to(k.data(), ds.data()); }; std::thread a(w,0), b(w,1); a.join(); b.join(); bruns.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count()); }
    std::sort(bruns.begin(),bruns.end());
    printf("ef %d: single %.0f q/s (%.1f us)  batch2 %.0f q/s\n", ef, single, 1e6/single, nq/bruns[2]);
  }
}
