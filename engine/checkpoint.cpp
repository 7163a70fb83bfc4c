#include "engine/checkpoint.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "engine/engine_error.h"
#include "engine/parameters.h"

namespace moescope::engine {
namespace {

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

void writeCheckpoint(std::ostream& out, const ModelConfig& model, const ModelWeights& weights) {
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "moescope"}, {"config", modelToToml(model)}};
  uint64_t offset = 0;
  for (const auto& t : weights) {
    uint64_t bytes = t.data.size() * sizeof(float);
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  uint64_t n = text.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : weights) {
    // Little-endian hosts only (x86-64, aarch64): the floats are written as they lie in memory.
    out.write(reinterpret_cast<const char*>(t.data.data()),
              static_cast<std::streamsize>(t.data.size() * sizeof(float)));
  }
}

ModelWeights loadCheckpoint(const std::string& path, const ModelConfig& model) {
  auto fail = [&](const std::string& what) { throw InputError("checkpoint '" + path + "': " + what); };
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail("no such file");
  if (!std::filesystem::is_regular_file(path, ec)) fail("not a regular file (a folder, device or FIFO)");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read the file");
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  unsigned char len[8];
  if (size < 8 || !in.read(reinterpret_cast<char*>(len), 8)) fail("not a safetensors file (too short)");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(len[i]) << (8 * i);
  if (header_len > size - 8 || header_len > kMaxHeaderBytes)
    fail("not a safetensors file (header length " + std::to_string(header_len) + ")");
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    fail("not a safetensors file (bad JSON header)");
  }
  if (!header.is_object()) fail("not a safetensors file (header is not an object)");
  const uint64_t data_start = 8 + header_len, data_size = size - data_start;

  ModelWeights weights;
  const auto specs = modelParameters(model);
  for (const auto& spec : specs) {
    if (!header.contains(spec.name)) fail("tensor '" + spec.name + "' is missing");
    const auto& entry = header[spec.name];
    if (!entry.is_object() || entry.value("dtype", "") != "F32")
      fail("tensor '" + spec.name + "' is not F32");
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;
    try {
      shape = entry.at("shape").get<std::vector<int64_t>>();
      begin = entry.at("data_offsets").at(0).get<uint64_t>();
      end = entry.at("data_offsets").at(1).get<uint64_t>();
    } catch (const nlohmann::json::exception&) {
      fail("tensor '" + spec.name + "' has a malformed header entry");
    }
    if (shape != spec.shape) {
      fail("tensor '" + spec.name + "' has shape " + shapeText(shape) + ", expected " +
           shapeText(spec.shape));
    }
    const uint64_t bytes = static_cast<uint64_t>(spec.numel()) * sizeof(float);
    if (end < begin || end - begin != bytes || end > data_size) {
      fail("tensor '" + spec.name + "' has bad data offsets");
    }
    NamedTensor t{spec.name, spec.shape, std::vector<float>(static_cast<size_t>(spec.numel()))};
    in.seekg(static_cast<std::streamoff>(data_start + begin));
    if (!in.read(reinterpret_cast<char*>(t.data.data()), static_cast<std::streamsize>(bytes))) {
      fail("tensor '" + spec.name + "' could not be read");
    }
    weights.push_back(std::move(t));
  }
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    bool known = false;
    for (const auto& spec : specs) known = known || spec.name == name;
    if (!known) fail("unexpected tensor '" + name + "' (not in this model)");
  }
  return weights;
}

}  // namespace moescope::engine
