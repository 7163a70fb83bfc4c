// The naming rules: a file's rules (named captures, first match wins, phase as a key or a capture,
// passes), every way a rules file can be wrong (one line naming the file, the line and the problem),
// and the shipped sets against the names their programs emit.
#include "storage/rules.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/common/temp_dir.h"

namespace moescope::storage {
namespace {

NameFields fields(std::optional<Category> category, Phase phase = Phase::None) {
  NameFields f;
  f.matched = true;
  f.category = category;
  f.phase = phase;
  return f;
}

// The fields of a match, less the rule index (which depends on the order of the shipped files).
NameFields withoutRule(NameFields f) {
  f.rule = kNone;
  return f;
}

TEST(Rules, CapturesAndFirstMatchWins) {
  const RuleSet set = RuleSet::parse(R"(
[[rule]]
match = '^step (?<step>\d+) mb (?<microbatch>\d+) (?<phase>fwd|bwd)$'
category = "compute.attention"

[[rule]]
match = '^layer(?<layer>\d+)\.expert(?<expert>\d+)$'
category = "compute.expert"
phase = "backward"

[[rule]]
match = '^stage(?<stage>\d+)/(forward|backward)'
pass = true

[[rule]]
match = 'expert'
category = "compute.ffn"
)",
                                     "test.toml");
  ASSERT_EQ(set.size(), 4u);

  NameFields a = set.match("step 12 mb 3 bwd");
  EXPECT_TRUE(a.matched);
  EXPECT_EQ(a.rule, 0);
  EXPECT_EQ(a.category, Category::ComputeAttention);
  EXPECT_EQ(a.phase, Phase::Backward);
  EXPECT_EQ(a.step, 12);
  EXPECT_EQ(a.microbatch, 3);
  EXPECT_EQ(a.layer, kNone);

  // The second rule matches before the fourth, which would also match.
  NameFields b = set.match("layer7.expert2");
  EXPECT_EQ(b.rule, 1);
  EXPECT_EQ(b.category, Category::ComputeExpert);
  EXPECT_EQ(b.phase, Phase::Backward);
  EXPECT_EQ(b.layer, 7);
  EXPECT_EQ(b.expert, 2);

  NameFields c = set.match("stage2/forward");
  EXPECT_EQ(c.stage, 2);
  EXPECT_TRUE(c.pass);
  EXPECT_FALSE(c.category.has_value());

  EXPECT_EQ(set.match("an expert").category, Category::ComputeFfn);
  EXPECT_EQ(set.match("aten::mm"), NameFields{});
  EXPECT_EQ(set.describe(1), "test.toml:6 '^layer(?<layer>\\d+)\\.expert(?<expert>\\d+)$'");
}

TEST(Rules, NumbersTooLargeOrNotNumbersAreNotCarried) {
  const RuleSet set = RuleSet::parse("[[rule]]\nmatch = '^s(?<step>\\w+)$'\n", "t.toml");
  EXPECT_EQ(set.match("s99999999999").step, kNone);
  EXPECT_EQ(set.match("sabc").step, kNone);
  EXPECT_EQ(set.match("s41").step, 41);
}

TEST(Rules, PhaseFromText) {
  EXPECT_EQ(phaseFromText("FWD"), Phase::Forward);
  EXPECT_EQ(phaseFromText("f"), Phase::Forward);
  EXPECT_EQ(phaseFromText("Backward"), Phase::Backward);
  EXPECT_EQ(phaseFromText("optimizer"), Phase::Optimizer);
  EXPECT_EQ(phaseFromText("sideways"), Phase::None);
}

std::string errorOf(std::string_view text) {
  try {
    RuleSet::parse(text, "bad.toml");
  } catch (const RulesError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Rules, BadFilesSayWhereAndWhat) {
  EXPECT_EQ(errorOf("[[rule]]\nmatch = '(unclosed'\n"),
            "bad.toml:1: bad regular expression '(unclosed': missing closing parenthesis at offset 9");
  EXPECT_EQ(errorOf("[[rule]]\nmatch = 'x'\ncategory = \"compute.magic\"\n"),
            "bad.toml:3: unknown category 'compute.magic'");
  EXPECT_EQ(errorOf("[[rule]]\nmatch = 'x'\nphase = \"sideways\"\n"),
            "bad.toml:3: unknown phase 'sideways' (forward, backward, optimizer)");
  EXPECT_EQ(errorOf("[[rule]]\nmatch = '(?<stepp>\\d+)'\n"),
            "bad.toml:1: unknown capture name 'stepp' (step, microbatch, layer, expert, stage, phase)");
  EXPECT_EQ(errorOf("[[rule]]\nmatch = 'x'\ncolour = 3\n"),
            "bad.toml:3: unknown key 'colour' in a rule (match, category, phase, pass)");
  EXPECT_EQ(errorOf("[[rule]]\ncategory = \"wait\"\n"),
            "bad.toml:1: a rule needs match = '<regular expression>'");
  EXPECT_EQ(errorOf("rules = 3\n"), "bad.toml:1: unknown key 'rules' (version, include_builtin, rule)");
  EXPECT_EQ(errorOf("version = 2\n"), "bad.toml:1: unsupported rules version (this build reads 1)");
  EXPECT_EQ(errorOf("[[rule]]\nmatch = 'x'\npass = \"yes\"\n"), "bad.toml:3: pass must be true or false");
  EXPECT_NE(errorOf("[[rule]\nmatch = 'x'\n").find("bad.toml:1: "), std::string::npos);
  try {
    RuleSet::load("/nonexistent/rules.toml");
    FAIL() << "no error";
  } catch (const RulesError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/rules.toml: cannot read the rules file");
  }
}

TEST(Rules, UserFilesComeFirstAndMayLeaveTheShippedSetsOut) {
  moescope::testing::TempRunFile dir;
  const auto path = dir.sibling("rules.toml");
  std::ofstream(path) << "[[rule]]\nmatch = '^ProfilerStep#'\ncategory = \"optimizer\"\n";
  const RuleSet chained = rulesFor({path});
  EXPECT_EQ(chained.size(), 1 + builtinRules().size());
  EXPECT_EQ(chained.match("ProfilerStep#4").category, Category::Optimizer);  // the user's rule wins
  EXPECT_EQ(chained.match("nccl:all_reduce").category, Category::CommDpAllreduce);

  std::ofstream(path) << "include_builtin = false\n[[rule]]\nmatch = 'x'\n";
  EXPECT_EQ(rulesFor({path}).size(), 1u);
}

TEST(Rules, ShippedSetsParse) {
  const std::vector<std::string_view> names = builtinRuleSetNames();
  ASSERT_EQ(names, (std::vector<std::string_view>{"moescope", "megatron", "pytorch"}));
  for (std::string_view n : names) EXPECT_GT(RuleSet::parse(builtinRuleText(n), n).size(), 5u) << n;
  EXPECT_TRUE(builtinRuleText("deepspeed").empty());
}

TEST(Rules, MoescopeEngineNames) {
  const RuleSet set = builtinRules();
  // Every span name of the engine (engine/stage_pass.cpp's table), with the category the engine gives it,
  // and "expert", which runs recorded before the experts computed in one span.
  const std::vector<std::pair<const char*, Category>> names = {
      {"embed", Category::ComputeEmbed},
      {"attention", Category::ComputeAttention},
      {"ffn", Category::ComputeFfn},
      {"router", Category::ComputeRouter},
      {"experts", Category::ComputeExpert},
      {"expert", Category::ComputeExpert},
      {"loss", Category::ComputeLoss},
      {"gather", Category::MoeSlice},
      {"scatter", Category::MoeSlice},
      {"dispatch_layout", Category::MoePermute},
      {"expert_layout", Category::MoePermute},
      {"return_layout", Category::MoePermute},
      {"combine", Category::MoePermute},
      {"attn_allreduce", Category::CommTpAllreduce},
      {"ffn_allreduce", Category::CommTpAllreduce},
      {"moe_allreduce", Category::CommTpAllreduce},
      {"dispatch_counts", Category::CommEpAlltoall},
      {"dispatch", Category::CommEpAlltoall},
      {"dispatch_grad", Category::CommEpAlltoall},
      {"return", Category::CommEpAlltoall},
      {"return_grad", Category::CommEpAlltoall},
      {"send_activation", Category::CommPpSendrecv},
      {"recv_activation", Category::CommPpSendrecv},
      {"send_grad", Category::CommPpSendrecv},
      {"recv_grad", Category::CommPpSendrecv},
      {"grad_allreduce", Category::CommDpAllreduce},
      {"loss_norm_allreduce", Category::CommDpAllreduce},
      {"adamw", Category::Optimizer},
      {"grad_norm", Category::Optimizer},
      {"wait", Category::Wait},
  };
  for (const auto& [name, category] : names) EXPECT_EQ(set.match(name).category, category) << name;
  EXPECT_EQ(set.match("recv_grad").phase, Phase::Backward);
  EXPECT_EQ(set.match("send_activation").phase, Phase::Forward);
}

// Megatron-Core's names, written out from its sources (megatron/core at d98e8a64, 2026-08-22):
// nvtx_range_push(suffix=S) inside function F of module M names the range "M.F.S"; nvtx_decorator()
// on function F of module M names it "M.F"; with_stack traces name a Python call "file(line): F".
TEST(Rules, MegatronCoreNames) {
  const RuleSet set = builtinRules();
  struct Case {
    const char* name;
    NameFields expected;
  };
  auto pass = [](Phase p) {
    NameFields f = fields(std::nullopt, p);
    f.pass = true;
    return f;
  };
  auto layer = [](int32_t l, Phase p = Phase::None) {
    NameFields f = fields(std::nullopt, p);
    f.layer = l;
    return f;
  };
  const std::vector<Case> cases = {
      // p2p_communication.py: @nvtx_decorator() on P2PCommunicator's methods.
      {"megatron.core.pipeline_parallel.p2p_communication.recv_forward",
       fields(Category::CommPpSendrecv, Phase::Forward)},
      {"megatron.core.pipeline_parallel.p2p_communication.send_forward",
       fields(Category::CommPpSendrecv, Phase::Forward)},
      {"megatron.core.pipeline_parallel.p2p_communication.recv_backward",
       fields(Category::CommPpSendrecv, Phase::Backward)},
      {"megatron.core.pipeline_parallel.p2p_communication.send_backward",
       fields(Category::CommPpSendrecv, Phase::Backward)},
      {"megatron.core.pipeline_parallel.p2p_communication.send_forward_recv_backward",
       fields(Category::CommPpSendrecv)},
      {"megatron.core.pipeline_parallel.p2p_communication.send_backward_recv_forward",
       fields(Category::CommPpSendrecv)},
      {"megatron.core.pipeline_parallel.p2p_communication.send_forward_recv_forward",
       fields(Category::CommPpSendrecv, Phase::Forward)},
      {"megatron.core.pipeline_parallel.p2p_communication.send_backward_recv_backward",
       fields(Category::CommPpSendrecv, Phase::Backward)},
      {"megatron.core.pipeline_parallel.p2p_communication.send_forward_backward_recv_forward_backward",
       fields(Category::CommPpSendrecv)},
      {"megatron/core/pipeline_parallel/p2p_communication.py(430): recv_forward",
       fields(Category::CommPpSendrecv, Phase::Forward)},
      // schedules.py: forward_step (line 403) and backward_step (line 539), seen through with_stack.
      {"megatron/core/pipeline_parallel/schedules.py(403): forward_step", pass(Phase::Forward)},
      {"megatron/core/pipeline_parallel/schedules.py(539): backward_step", pass(Phase::Backward)},
      {"megatron.core.pipeline_parallel.schedules.forward_step", pass(Phase::Forward)},
      // attention.py, Attention.forward: nvtx_range_push(suffix=...).
      {"megatron.core.transformer.attention.forward.qkv", fields(Category::ComputeAttention)},
      {"megatron.core.transformer.attention.forward.adjust_key_value", fields(Category::ComputeAttention)},
      {"megatron.core.transformer.attention.forward.rotary_pos_emb", fields(Category::ComputeAttention)},
      {"megatron.core.transformer.attention.forward.core_attention", fields(Category::ComputeAttention)},
      {"megatron.core.transformer.attention.forward.linear_proj", fields(Category::ComputeAttention)},
      // mlp.py, MLP.forward.
      {"megatron.core.transformer.mlp.forward.linear_fc1", fields(Category::ComputeFfn)},
      {"megatron.core.transformer.mlp.forward.activation", fields(Category::ComputeFfn)},
      {"megatron.core.transformer.mlp.forward.linear_fc2", fields(Category::ComputeFfn)},
      // transformer_layer.py: _forward_attention, _apply_self_attn_bda_step, _run_mlp, _apply_mlp_bda_step.
      {"megatron.core.transformer.transformer_layer._forward_attention.self_attention",
       fields(Category::ComputeAttention)},
      {"megatron.core.transformer.transformer_layer._apply_self_attn_bda_step.self_attn_bda",
       fields(Category::ComputeAttention)},
      {"megatron.core.transformer.transformer_layer._run_mlp.mlp", fields(Category::ComputeFfn)},
      {"megatron.core.transformer.transformer_layer._apply_mlp_bda_step.mlp_bda",
       fields(Category::ComputeFfn)},
      // language_model_embedding.py: @nvtx_decorator() on LanguageModelEmbedding.forward.
      {"megatron.core.models.common.embeddings.language_model_embedding.forward",
       fields(Category::ComputeEmbed)},
      // MoE: moe_layer.py's delayed wgrad range, the A2A-overlap schedule's nodes
      // (pipeline_parallel/utils.py: "<name> forward|backward|wgrad") and per-layer passes
      // (model_chunk_schedule_plan.py: "layer_<i>f", "layer_<j>b").
      {"delayed_expert_wgrad", fields(Category::ComputeExpert, Phase::Backward)},
      {"moe_dispatch forward", fields(Category::CommEpAlltoall, Phase::Forward)},
      {"moe_dispatch backward", fields(Category::CommEpAlltoall, Phase::Backward)},
      {"moe_combine forward", fields(Category::CommEpAlltoall, Phase::Forward)},
      {"mlp backward", fields(Category::ComputeExpert, Phase::Backward)},
      {"mlp wgrad", fields(Category::ComputeExpert, Phase::Backward)},
      {"pre_dispatch_computation forward", fields(Category::ComputeAttention, Phase::Forward)},
      {"layer_3f", layer(3, Phase::Forward)},
      {"layer_11b", layer(11, Phase::Backward)},
      {"megatron/core/transformer/moe/moe_layer.py(445): route", fields(Category::ComputeRouter)},
      {"megatron/core/transformer/moe/moe_layer.py(496): dispatch", fields(Category::CommEpAlltoall)},
      {"megatron/core/transformer/moe/moe_layer.py(536): routed_experts_compute",
       fields(Category::ComputeExpert)},
      {"megatron/core/transformer/moe/token_dispatcher.py(682): token_dispatch",
       fields(Category::CommEpAlltoall)},
      {"megatron/core/transformer/moe/token_dispatcher.py(624): dispatch_preprocess",
       fields(Category::MoePermute)},
      // with_stack's module ranges for Megatron's classes.
      {"nn.Module: TransformerLayer_5", layer(5)},
      {"nn.Module: TopKRouter_0", fields(Category::ComputeRouter)},
      {"nn.Module: TEGroupedMLP_0", fields(Category::ComputeExpert)},
      {"nn.Module: SelfAttention_2", fields(Category::ComputeAttention)},
      {"megatron/core/optimizer/optimizer.py(816): step", fields(Category::Optimizer, Phase::Optimizer)},
      {"megatron/core/distributed/distributed_data_parallel.py(668): finish_grad_sync",
       fields(Category::CommDpAllreduce)},
  };
  for (const Case& c : cases) EXPECT_EQ(withoutRule(set.match(c.name)), c.expected) << c.name;
  // Names that only look alike are left alone.
  EXPECT_FALSE(set.match("megatron.core.pipeline_parallel.schedules.forward_step_helper").matched);
  EXPECT_FALSE(set.match("megatron.core.transformer.attention.forward").matched);
}

TEST(Rules, PyTorchNames) {
  const RuleSet set = builtinRules();
  NameFields step = set.match("ProfilerStep#17");
  EXPECT_EQ(step.step, 17);
  EXPECT_FALSE(step.category.has_value());
  EXPECT_EQ(set.match("Optimizer.step#AdamW.step").category, Category::Optimizer);
  EXPECT_EQ(set.match("Optimizer.zero_grad#AdamW.zero_grad").phase, Phase::Optimizer);
  EXPECT_EQ(set.match("autograd::engine::evaluate_function: AddmmBackward0").phase, Phase::Backward);
  EXPECT_EQ(set.match("nccl:send 0->1").category, Category::CommPpSendrecv);
  EXPECT_EQ(set.match("nccl:recv 1<-0").category, Category::CommPpSendrecv);
  EXPECT_EQ(set.match("nccl:all_reduce").category, Category::CommDpAllreduce);
  EXPECT_EQ(set.match("nccl:all_to_all").category, Category::CommEpAlltoall);
  EXPECT_EQ(set.match("ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)").category,
            Category::CommPpSendrecv);
  EXPECT_EQ(set.match("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)").category,
            Category::CommDpAllreduce);
  EXPECT_EQ(set.match("aten::embedding").category, Category::ComputeEmbed);
  EXPECT_EQ(set.match("aten::_scaled_dot_product_flash_attention").category, Category::ComputeAttention);
  EXPECT_EQ(set.match("aten::cross_entropy_loss").category, Category::ComputeLoss);
  EXPECT_EQ(set.match("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128>>").category,
            Category::ComputeAttention);
  EXPECT_FALSE(set.match("aten::mm").matched);
  EXPECT_FALSE(set.match("cudaLaunchKernel").matched);
}

}  // namespace
}  // namespace moescope::storage
